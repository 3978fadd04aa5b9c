// The burn-down chart of the Budgets page (issue 8): a team's or key's spend over its budget
// period, beside the budget and the even pace, with the projection at the pace so far.
import { useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ReferenceLine, Tooltip, XAxis, YAxis } from 'recharts';
import { get, type BudgetBurndown, type BudgetStatus } from '../api';
import { ChartCard } from '../components/chart';
import { useResource } from '../hooks';
import { LoadError, Section, SelectField, fmtCost, fmtTime } from '../components/ui';

export function BurndownSection({ budgets }: { budgets: BudgetStatus[] }) {
  const choices = budgets.filter((b) => b.scope !== 'user').map((b) => ({ value: `${b.scope}:${b.name}`, label: `${b.scope} ${b.name}` }));
  const [picked, setPicked] = useState('');
  const current = choices.some((c) => c.value === picked) ? picked : (choices[0]?.value ?? '');
  const [scope, ...rest] = current.split(':');
  const name = rest.join(':');
  const data = useResource((s) => (current ? get<BudgetBurndown>(`/budgets/burndown?scope=${scope}&name=${encodeURIComponent(name)}&buckets=30`, s) : Promise.resolve(undefined)), [current], 30_000);
  if (!choices.length) return null;
  const d = data.data;
  const short = (iso: string) => {
    const t = new Date(iso);
    return d && (d.period === 'day' || Date.parse(d.to) - Date.parse(d.from) <= 86_400_000 * 1.01)
      ? t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : t.toLocaleDateString([], { month: 'short', day: 'numeric' });
  };
  const rows = d?.points.map((p) => ({ ...p, label: short(p.time) })) ?? [];
  const caption = d
    ? `${d.scope} ${d.name}: ${fmtCost(d.spent)} of ${fmtCost(d.amount)} ${d.cost_unit} spent this ${d.period === 'total' ? 'budget (never resets)' : d.period}` +
      (d.projected !== null ? `; at this pace ${fmtCost(d.projected)} by ${fmtTime(d.to)}` : '') +
      (d.runs_out_at ? (Date.parse(d.runs_out_at) <= Date.now() + 1000 ? '; the budget is used up.' : `; it runs out about ${fmtTime(d.runs_out_at)}.`) : '; it lasts the period at this pace.')
    : '';
  return (
    <Section title="Burn-down">
      <div className="filters">
        <SelectField id="burndown-budget" label="Budget" value={current} onChange={setPicked} options={choices} hint="Spend over the current period against the budget." />
      </div>
      <LoadError error={data.error} retry={data.reload} />
      {d ? (
        <ChartCard
          title={`Burn-down of ${d.scope} ${d.name}`}
          id="burndown-chart"
          rows={rows}
          rowHeader={{ label: 'Until', value: (r) => fmtTime(r.time) }}
          columns={[
            { label: `Spent (${d.cost_unit})`, value: (r) => (r.spent === null ? '—' : fmtCost(r.spent)), num: true },
            { label: `Even pace (${d.cost_unit})`, value: (r) => fmtCost(r.pace), num: true },
          ]}
          caption={caption}
        >
          <LineChart data={rows} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
            <CartesianGrid stroke="#e5e8ee" vertical={false} />
            <XAxis dataKey="label" tick={{ fontSize: 11 }} minTickGap={24} />
            <YAxis width={56} tick={{ fontSize: 11 }} />
            <Tooltip />
            <Legend />
            <ReferenceLine y={d.amount} stroke="#b3261e" strokeDasharray="4 4" label={{ value: `budget ${fmtCost(d.amount)}`, fontSize: 11, fill: '#8a1c16', position: 'insideTopLeft' }} />
            <Line type="monotone" dataKey="pace" name="Even pace" stroke="#6b7280" strokeDasharray="3 3" dot={false} isAnimationActive={false} />
            <Line type="monotone" dataKey="spent" name="Spent" stroke="#2358d4" dot={false} isAnimationActive={false} />
          </LineChart>
        </ChartCard>
      ) : null}
    </Section>
  );
}
