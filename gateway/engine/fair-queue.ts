// The wait queue of an endpoint's concurrency slots: weighted fair queuing across groups (teams,
// by their weight; start-time fair queuing, so a group that was idle gets no credit for it), and
// within a group interactive before batch, oldest first. A lone group gets every slot (work-
// conserving); requests without a share share one group and are served first come, first served.
import type { QueueShare } from './stages.js';

export interface QueueEntry {
  share: QueueShare | undefined;
  /** arrival order, for ties */
  seq: number;
}

interface Group<T> {
  weight: number;
  /** virtual finish time of the group's last served entry */
  finish: number;
  interactive: T[];
  batch: T[];
}

export class FairQueue<T extends QueueEntry> {
  private readonly groups = new Map<string, Group<T>>();
  private vtime = 0;
  private seq = 0;
  length = 0;

  nextSeq(): number {
    return ++this.seq;
  }

  push(e: T): void {
    const name = e.share?.group ?? '';
    let g = this.groups.get(name);
    if (!g) {
      g = { weight: 1, finish: 0, interactive: [], batch: [] };
      this.groups.set(name, g);
    }
    g.weight = e.share?.weight ?? 1;
    (e.share?.batch ? g.batch : g.interactive).push(e);
    this.length++;
  }

  remove(e: T): boolean {
    const name = e.share?.group ?? '';
    const g = this.groups.get(name);
    if (!g) return false;
    const list = e.share?.batch ? g.batch : g.interactive;
    const i = list.indexOf(e);
    if (i < 0) return false;
    list.splice(i, 1);
    this.length--;
    this.dropIfEmpty(name, g);
    return true;
  }

  /** The next entry to serve. */
  shift(): T | undefined {
    let best: { name: string; g: Group<T>; start: number; head: T } | undefined;
    for (const [name, g] of this.groups) {
      const head = g.interactive[0] ?? g.batch[0];
      if (!head) continue;
      const start = Math.max(this.vtime, g.finish);
      if (!best || start < best.start || (start === best.start && head.seq < best.head.seq)) best = { name, g, start, head };
    }
    if (!best) return undefined;
    const { g, start, head } = best;
    this.vtime = start;
    g.finish = start + 1 / g.weight;
    (g.interactive[0] === head ? g.interactive : g.batch).shift();
    this.length--;
    this.dropIfEmpty(best.name, g);
    return head;
  }

  private dropIfEmpty(name: string, g: Group<T>): void {
    // a group's finish time matters only while it is behind the virtual clock's future
    if (!g.interactive.length && !g.batch.length && g.finish <= this.vtime) this.groups.delete(name);
  }
}
