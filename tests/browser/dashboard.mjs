// The dashboard page in headless Chromium against a running dev stack (started by scripts/test-browser.sh):
// the runbook's console lines (MISS, then HIT on reload, MISS after a bust and after a clear), the
// figures on the page equal to the API's JSON, the scope picker (a team, an employee's own scope, a
// refused drill-down), the superadmin's views, a readable 401, and every request
// of the page on its own origin (the page's server forwards /api/* to the API: no CORS).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run this through scripts/test-browser.sh)`);
  return value;
}

const WEB = env('BROWSER_WEB_URL');
const API = env('BROWSER_API_URL');
const STATE = env('BROWSER_STATE_DIR');
const SECRET = env('BROWSER_JWT_SECRET');
const SCREENSHOT = env('BROWSER_SCREENSHOT');
const { chromium } = createRequire(`${env('PLAYWRIGHT_DIR')}/`)('playwright-core');

// The runbook's tenant, the first of `devtools seed-demo`.
const TENANT = 'a11dfb63-4b18-4eb8-872e-747af2e37c46';
const TIMEOUT = 60_000;
const CACHE_LINE = /^\[dashboard-bundle\] Cache (HIT|MISS|STALE|BYPASS) key=(\S+) \((.+)\)$/;
// A HIT comes from Redis or from the function's in-memory level.
const SOURCES = { HIT: /^(redis|memory)$/, MISS: /^compute from db$/ };

let step = 0;
function ok(what) {
  step += 1;
  console.log(`ok ${step} - ${what}`);
}

function base64url(value) {
  return Buffer.from(value).toString('base64url');
}

function hs256(claims) {
  const unsigned = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}

const userDataDir = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e));
  const apiRequests = [];
  const elsewhere = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.origin !== new URL(WEB).origin) elsewhere.push(`${r.method()} ${r.url()}`);
    else if (url.pathname.startsWith('/api/')) apiRequests.push(`${r.method()} ${url.pathname}`);
  });
  page.on('console', (msg) => console.log(`#   console.${msg.type()}: ${msg.text()}`));

  let loads = 0;
  // Runs `action` and returns the one runbook line the page logs for the load it causes.
  async function cacheLineOf(action) {
    const [message] = await Promise.all([
      page.waitForEvent('console', { predicate: (m) => CACHE_LINE.test(m.text()), timeout: TIMEOUT }),
      action(),
    ]);
    loads += 1;
    await page.waitForFunction((n) => Number(document.body.dataset.loads) >= n, loads);
    return message.text();
  }

  function expectLine(line, status, key) {
    const match = CACHE_LINE.exec(line);
    assert.ok(match, `not a runbook line: ${line}`);
    assert.equal(match[1], status, line);
    assert.equal(match[2], key, line);
    if (SOURCES[status]) assert.match(match[3], SOURCES[status], line);
  }

  const tenantKey = `dashboard:bundle:${TENANT}:include=true`;
  const badge = page.locator('#cache-status');

  // 1. First load: computed from Postgres.
  let line = await cacheLineOf(() => page.goto(`${WEB}/dashboard`));
  expectLine(line, 'MISS', tenantKey);
  assert.equal(await badge.textContent(), 'MISS');
  assert.match(await page.locator('#elapsed').textContent(), /^\d+ ms$/);
  ok(`first load logs "${line}"`);

  // 2. Reload: from the cache (the function's memory or Redis).
  line = await cacheLineOf(() => page.click('#reload'));
  expectLine(line, 'HIT', tenantKey);
  assert.equal(await badge.textContent(), 'HIT');
  ok(`reload logs "${line}"`);

  // 3. The figures on the page are the API's.
  const admin = readFileSync(join(STATE, 'token-admin'), 'utf8').trim();
  const response = await fetch(`${API}/api/reports/dashboard-bundle`, { headers: { Authorization: `Bearer ${admin}` } });
  const text = await response.text();
  const api = JSON.parse(text).data;
  const stats = await page.$$eval('[data-stat]', (cards) =>
    Object.fromEntries(cards.map((c) => [c.dataset.stat, c.querySelector('.value').textContent])),
  );
  assert.equal(Object.keys(stats).length, 11, 'eleven cards');
  const digits = (shown) => shown.replace(/[$,]/g, '');
  // Exact decimal text of a money figure in the API's body (JSON.parse would round it through a float).
  const rawMoney = (name) => new RegExp(`"${name}":(-?[0-9.]+)`).exec(text)[1];
  const sameDecimal = (a, b) => Number(a) === Number(b) && a.replace(/\.?0+$/, '') === b.replace(/\.?0+$/, '');
  for (const [name, shown] of Object.entries(stats)) {
    if (name === 'pipelineValue' || name === 'wonValue') {
      assert.match(shown, /^\$\d{1,3}(,\d{3})*\.\d{2}$/, `${name} shown as money: ${shown}`);
      assert.ok(sameDecimal(digits(shown), rawMoney(name)), `${name}: page ${shown}, API ${rawMoney(name)}`);
    } else {
      assert.match(shown, /^\d{1,3}(,\d{3})*$/, `${name} shown as a count: ${shown}`);
      assert.equal(Number(digits(shown)), api.stats[name], `${name}: page ${shown}, API ${api.stats[name]}`);
    }
  }
  for (const list of ['recentActivities', 'recentLeads', 'recentOpportunities']) {
    const ids = await page.$$eval(`table[data-list="${list}"] tbody tr[data-id]`, (rows) => rows.map((r) => r.dataset.id));
    assert.deepEqual(ids, api.lists[list].map((item) => item.id), `${list} rows`);
    assert.ok(ids.length > 0, `${list} has rows`);
  }
  assert.match(await page.locator('#generated').textContent(), /^computed \d+ minutes? ago$/);
  ok(`the 11 cards and 3 tables equal the API's JSON (${api.stats.totalContacts} contacts, pipeline ${stats.pipelineValue})`);

  // 4. Bust: recomputed.
  line = await cacheLineOf(() => page.click('#bust'));
  expectLine(line, 'MISS', tenantKey);
  ok(`the bust button logs "${line}"`);

  // 5. Clear this tenant, then reload: recomputed.
  const cleared = await page.evaluate(() => document.body.dataset.cleared || '0');
  await page.click('#clear');
  // Compared as the page counts it: unset is 0, so an unset value must not end the wait early.
  await page.waitForFunction((n) => (document.body.dataset.cleared || '0') !== n, cleared);
  const message = await page.locator('#message').textContent();
  const clearError = await page.locator('#error').textContent();
  assert.match(message, new RegExp(`^cleared 1 dashboard bundle\\(s\\) of tenant ${TENANT}\\.$`), `page error: ${clearError}`);
  // Another process (the dashboard function) may serve its in-memory copy for up to
  // LOCAL_CACHE_MAX_AGE_MS (1 s) after a clear: the documented bound.
  await page.waitForTimeout(1_100);
  line = await cacheLineOf(() => page.click('#reload'));
  expectLine(line, 'MISS', tenantKey);
  ok(`"${message}" then reload (after the in-memory bound) logs "${line}"`);

  // 6. The operations panel: health and warm runs (none in a fresh database).
  await page.waitForFunction(() => document.getElementById('health-status').dataset.status === 'ok');
  const warmRuns = await (await fetch(`${WEB}/dev/warm-runs`)).json();
  assert.deepEqual(warmRuns, []);
  assert.match(await page.locator('#warm-runs tbody').textContent(), /No warm run recorded yet/);
  ok('operations panel: health ok, warm runs as /dev/warm-runs says (none)');

  line = await cacheLineOf(() => page.click('#reload'));
  expectLine(line, 'HIT', tenantKey);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  ok(`screenshot of a HIT in ${SCREENSHOT}`);

  // 7. Scoped dashboards: the admin drills into a team, the employee sees their own scope, and a
  // drill-down the employee may not make is a readable 403.
  const scopes = await (await fetch(`${WEB}/dev/scopes`)).json();
  const team = scopes[TENANT].teams[0];
  assert.ok(team && team.members.length > 0, `the demo tenant has a team: ${JSON.stringify(scopes[TENANT])}`);
  line = await cacheLineOf(() => page.selectOption('#scope', `team:${team.id}`));
  expectLine(line, 'MISS', `${tenantKey}:team=${team.id}`);
  assert.equal(await page.locator('#scope-shown').textContent(), `scope: team ${team.id}`);
  const adminToken = readFileSync(join(STATE, 'token-admin'), 'utf8').trim();
  const teamApi = await (await fetch(`${API}/api/reports/dashboard-bundle?team_id=${team.id}`, {
    headers: { Authorization: `Bearer ${adminToken}` },
  })).json();
  const shownLeads = await page.$eval('[data-stat="totalLeads"] .value', (e) => e.textContent);
  assert.equal(Number(shownLeads.replace(/,/g, '')), teamApi.data.stats.totalLeads, 'the team\'s leads');
  assert.ok(teamApi.data.stats.totalLeads < api.stats.totalLeads, 'a team sees less than its tenant');
  const sources = await page.$$eval('table[data-breakdown="leadsBySource"] tbody tr', (rows) =>
    Object.fromEntries(rows.map((r) => [r.cells[0].textContent, Number(r.cells[1].textContent.replace(/,/g, ''))])),
  );
  assert.deepEqual(sources, teamApi.data.stats.leadsBySource, 'leads by source on the page');
  ok(`admin, team picked: "${line}", ${shownLeads} leads as the API says, sources ${JSON.stringify(sources)}`);

  const employeeToken = readFileSync(join(STATE, 'token-employee'), 'utf8').trim();
  const employee = JSON.parse(Buffer.from(employeeToken.split('.')[1], 'base64url')).sub;
  line = await cacheLineOf(() => page.selectOption('#token', 'employee'));
  expectLine(line, 'MISS', `${tenantKey}:emp=${employee}`);
  assert.equal(await page.locator('#scope-shown').textContent(), `scope: employee ${employee}`);
  const other = scopes[TENANT].employees.find((e) => e !== employee);
  const refusedBefore = loads;
  await page.selectOption('#scope', `emp:${other}`);
  await page.waitForFunction((n) => Number(document.body.dataset.loads) > n, refusedBefore);
  loads += 1;
  assert.match(await page.locator('#error').textContent(), /^Forbidden \(403\): an employee sees only their own dashboard/);
  ok(`employee: own scope "${line}", another employee's is a 403 on the page`);
  await page.selectOption('#token', 'admin');
  await page.waitForFunction((n) => Number(document.body.dataset.loads) > n, loads);
  loads += 1;

  // 8. Superadmin: the global view, then one tenant from the picker.
  line = await cacheLineOf(() => page.selectOption('#token', 'superadmin'));
  expectLine(line, 'MISS', 'dashboard:bundle:SUPERADMIN_GLOBAL:include=true');
  const tenants = await (await fetch(`${WEB}/dev/tenants`)).json();
  const options = await page.$$eval('#tenant option', (os) => os.map((o) => o.value));
  assert.deepEqual(options, ['', ...tenants.map((t) => t.id)]);
  assert.equal(tenants.length, 3);
  assert.equal(await page.locator('#clear').textContent(), "Clear every tenant's cache");
  const otherTenant = tenants.find((t) => t.id !== TENANT).id;
  line = await cacheLineOf(() => page.selectOption('#tenant', otherTenant));
  expectLine(line, 'MISS', `dashboard:bundle:${otherTenant}:include=true`);
  ok(`superadmin: global view and the picker (${tenants.length} tenants) log their keys`);

  // 9. An expired token: a readable message, not a blank page.
  const expired = hs256({ sub: 'dev-admin', role: 'admin', tenant_id: TENANT, exp: Math.floor(Date.now() / 1000) - 3600 });
  await page.selectOption('#token', 'custom');
  await page.fill('#custom-token', expired);
  const before = loads;
  await page.locator('#custom-token').dispatchEvent('change');
  await page.waitForFunction((n) => Number(document.body.dataset.loads) > n, before);
  const error = page.locator('#error');
  assert.ok(await error.isVisible(), 'error shown');
  assert.match(await error.textContent(), /^Not authorised \(401\): .*expired/);
  assert.equal(await badge.textContent(), 'ERROR');
  ok(`expired token: "${await error.textContent()}"`);

  // 10. One origin: the API was reached through the page's server, and nothing else was asked for.
  assert.deepEqual(elsewhere, [], 'requests that left the page\'s origin');
  for (const route of ['GET /api/reports/dashboard-bundle', 'POST /api/reports/clear-cache', 'GET /api/system/health']) {
    assert.ok(apiRequests.includes(route), `${route} not sent through ${WEB}: ${apiRequests}`);
  }
  ok(`the page's ${apiRequests.length} API requests all went to its own origin (${WEB}/api/...)`);

  assert.deepEqual(pageErrors, [], 'no uncaught errors on the page');
  console.log(`1..${step}`);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
