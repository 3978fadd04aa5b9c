// Where the admin window may go: the admin origin only; elsewhere only http(s) links to
// allowlisted hosts, opened in the system browser.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideNavigation, isAdminOrigin, isAllowedExternal, isPermissionAllowed, parseHostPattern } from '../../main/lib/urls.js';

const ADMIN = 'http://127.0.0.1:4001';

describe('shell URL policy', () => {
  test('navigation within the admin origin is allowed', () => {
    assert.equal(isAdminOrigin(`${ADMIN}/`, ADMIN), true);
    assert.equal(isAdminOrigin(`${ADMIN}/keys?team=a#new`, ADMIN), true);
    assert.equal(isAdminOrigin('http://127.0.0.1:4001', ADMIN), true);
  });

  test('anything off the admin origin is not the admin origin', () => {
    for (const url of [
      'http://127.0.0.1:4000/',
      'https://127.0.0.1:4001/',
      'http://localhost:4001/',
      'http://127.0.0.1:4001@evil.example/',
      'http://evil.example/#http://127.0.0.1:4001',
      'javascript:location="http://127.0.0.1:4001"',
      'data:text/html,hi',
      'file:///etc/passwd',
      '',
      'garbage',
    ]) {
      assert.equal(isAdminOrigin(url, ADMIN), false, url);
    }
    assert.equal(isAdminOrigin(`${ADMIN}/`, null), false, 'no admin origin while the gateway is down');
  });

  test('external links: only http(s) to configured hosts', () => {
    const hosts = ['docs.example.org', '10.0.0.5:8000', '*.corp.example'];
    assert.equal(isAllowedExternal('https://docs.example.org/airlock/setup', hosts), true);
    assert.equal(isAllowedExternal('http://docs.example.org/', hosts), true);
    assert.equal(isAllowedExternal('https://DOCS.EXAMPLE.ORG/', hosts), true);
    assert.equal(isAllowedExternal('https://docs.example.org:8443/', hosts), true, 'an entry without a port allows any port');
    assert.equal(isAllowedExternal('http://10.0.0.5:8000/v1/models', hosts), true);
    assert.equal(isAllowedExternal('http://10.0.0.5:8001/', hosts), false, 'an entry with a port allows only that port');
    assert.equal(isAllowedExternal('http://10.0.0.5/', hosts), false);
    assert.equal(isAllowedExternal('https://wiki.corp.example/page', hosts), true);
    assert.equal(isAllowedExternal('https://a.b.corp.example/', hosts), true);
    assert.equal(isAllowedExternal('https://corp.example/', hosts), false, 'the wildcard covers subdomains only');
    assert.equal(isAllowedExternal('https://evilcorp.example/', hosts), false);
    assert.equal(isAllowedExternal('https://docs.example.org.evil.example/', hosts), false);
    assert.equal(isAllowedExternal('https://evil.example/?docs.example.org', hosts), false);
    assert.equal(isAllowedExternal('https://other.example/', hosts), false);
  });

  test('no javascript:, file:, data: or other schemes, whatever the host', () => {
    const hosts = ['docs.example.org'];
    for (const url of [
      'javascript:alert(1)',
      'JavaScript://docs.example.org/%0aalert(1)',
      'file://docs.example.org/etc/passwd',
      'file:///etc/passwd',
      'data:text/html,<script>alert(1)</script>',
      'ftp://docs.example.org/',
      'smb://docs.example.org/share',
      'ms-msdt:/id PCWDiagnostic',
      'vbscript:msgbox(1)',
      'blob:https://docs.example.org/uuid',
      '//docs.example.org/',
      'docs.example.org',
    ]) {
      assert.equal(isAllowedExternal(url, hosts), false, url);
    }
  });

  test('URLs with user info are refused (a classic way to disguise the host)', () => {
    assert.equal(isAllowedExternal('https://user:pw@docs.example.org/', ['docs.example.org']), false);
    assert.equal(isAllowedExternal('https://docs.example.org@evil.example/', ['docs.example.org']), false);
  });

  test('an empty allowlist allows nothing; invalid entries are ignored', () => {
    assert.equal(isAllowedExternal('https://docs.example.org/', []), false);
    assert.equal(isAllowedExternal('https://docs.example.org/', ['https://docs.example.org/', '*', '*.', 'a b']), false);
  });

  test('host patterns parse strictly', () => {
    assert.deepEqual(parseHostPattern('Docs.Example.org'), { hostname: 'docs.example.org', port: null, wildcard: false });
    assert.deepEqual(parseHostPattern('10.0.0.5:8000'), { hostname: '10.0.0.5', port: '8000', wildcard: false });
    assert.deepEqual(parseHostPattern('[::1]:8080'), { hostname: '[::1]', port: '8080', wildcard: false });
    assert.deepEqual(parseHostPattern('*.corp.example'), { hostname: 'corp.example', port: null, wildcard: true });
    for (const bad of ['', ' ', '*', '*.', '*.a:80', 'http://x', 'x/y', 'user@x', 'a b', 'x?y', 'x#y', 'a.*.b', 'x:99999']) {
      assert.equal(parseHostPattern(bad), null, JSON.stringify(bad));
    }
    assert.equal(isAllowedExternal('http://[::1]:8080/', ['[::1]:8080']), true);
  });

  test('decideNavigation: allow the admin origin, open allowlisted links outside, deny the rest', () => {
    const hosts = ['docs.example.org'];
    assert.equal(decideNavigation(`${ADMIN}/usage`, ADMIN, hosts), 'allow');
    assert.equal(decideNavigation('https://docs.example.org/x', ADMIN, hosts), 'open-external');
    assert.equal(decideNavigation('https://evil.example/', ADMIN, hosts), 'deny');
    assert.equal(decideNavigation('javascript:alert(1)', ADMIN, hosts), 'deny');
    assert.equal(decideNavigation('file:///etc/passwd', ADMIN, hosts), 'deny');
    assert.equal(decideNavigation(`${ADMIN}/`, null, hosts), 'deny', 'nothing is the admin origin while the gateway is down');
  });

  test('permissions: all refused but clipboard writes from the admin origin', () => {
    for (const p of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal', 'fullscreen', 'hid', 'usb', 'serial', 'display-capture', 'unknown']) {
      assert.equal(isPermissionAllowed(p, `${ADMIN}/keys`, ADMIN), false, p);
    }
    assert.equal(isPermissionAllowed('clipboard-sanitized-write', `${ADMIN}/keys`, ADMIN), true);
    assert.equal(isPermissionAllowed('clipboard-sanitized-write', ADMIN, ADMIN), true, 'a check handler passes the origin');
    assert.equal(isPermissionAllowed('clipboard-sanitized-write', 'https://evil.example/', ADMIN), false);
    assert.equal(isPermissionAllowed('clipboard-sanitized-write', 'data:text/html,x', ADMIN), false);
    assert.equal(isPermissionAllowed('clipboard-sanitized-write', `${ADMIN}/keys`, null), false);
  });
});
