// The dev dashboard page: loads the bundle from the local API (relative /api/... URLs: the page's server
// forwards them to the functions, so page and API share one origin and no CORS is involved), shows it,
// and logs one line per load in the previous system's runbook format:
//   [dashboard-bundle] Cache HIT key=dashboard:bundle:<tenant|SUPERADMIN_GLOBAL>:include=<bool> (redis)
//     (a scoped bundle's key goes on with :emp=<uuid> or :team=<uuid>)
//   [dashboard-bundle] Cache HIT key=... (memory)   (the function's in-memory level)
//   [dashboard-bundle] Cache MISS key=... (compute from db)
// No framework, no build step: served as is by scripts/dev_web.py.
'use strict';

const STATS = [
  ['totalContacts', 'Contacts', 'count'],
  ['totalAccounts', 'Accounts', 'count'],
  ['totalLeads', 'Leads', 'count'],
  ['openLeads', 'Open leads', 'count'],
  ['newLeadsLast30Days', 'New leads (30 days)', 'count'],
  ['totalOpportunities', 'Opportunities', 'count'],
  ['openOpportunities', 'Open opportunities', 'count'],
  ['wonOpportunities', 'Won opportunities', 'count'],
  ['activitiesLast30Days', 'Activities (30 days)', 'count'],
  ['pipelineValue', 'Pipeline value', 'money'],
  ['wonValue', 'Won value', 'money'],
];

// Where each outcome of X-Cache came from, as the console line says it.
const SOURCES = {
  HIT: 'redis',
  MISS: 'compute from db',
  STALE: 'redis, stale',
  BYPASS: 'compute from db, redis unavailable',
};

const MONEY_FIELDS = new Set(['pipelineValue', 'wonValue', 'amount']);
const moneyFormat = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const countFormat = new Intl.NumberFormat('en-US');
const dateFormat = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });

const $ = (id) => document.getElementById(id);
let config = null; // GET /dev/config: {tokens: {admin, superadmin, manager, employee}}
let scopes = {}; // GET /dev/scopes: {<tenant>: {teams: [{id, members}], employees: [id]}}
let tenantsLoaded = false;
let lastMeta = null;
let loads = 0;

// Money arrives as exact JSON numbers; keep their source text (where the browser offers it) so that
// formatting never rounds through a float.
function parseBundle(text) {
  return JSON.parse(text, function (key, value, context) {
    if (MONEY_FIELDS.has(key) && typeof value === 'number' && context && context.source) return context.source;
    return value;
  });
}

function money(value) {
  return value === null || value === undefined ? '—' : moneyFormat.format(String(value));
}

function when(iso) {
  return iso ? dateFormat.format(new Date(iso)) + ' UTC' : '—';
}

function token() {
  const choice = $('token').value;
  return choice === 'custom' ? $('custom-token').value.trim() : (config.tokens[choice] || '');
}

// A claim of the chosen token (not verified here: the API does that).
function claim(name) {
  try {
    const payload = token().split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload))[name];
  } catch {
    return null;
  }
}

// The role claim, to show the superadmin controls.
function isSuperadmin() {
  return claim('role') === 'superadmin';
}

function cacheKey(meta) {
  const scope = meta.scope === 'employee' ? `:emp=${meta.scope_id}` : meta.scope === 'team' ? `:team=${meta.scope_id}` : '';
  const widgets = meta.widgets ? `:widgets=${meta.widgets}` : '';
  return `dashboard:bundle:${meta.tenant_id || 'SUPERADMIN_GLOBAL'}:include=${meta.include_test_data}${scope}${widgets}`;
}

// The tenant whose scopes the picker offers: the picked one for a superadmin, else the token's.
function scopeTenant() {
  return isSuperadmin() ? $('tenant').value : claim('tenant_id') || '';
}

// The scope picker: the own dashboard (the tenant for admins, one's own records for employees and
// managers), then the tenant's teams and employees. The API decides who may see which.
function fillScopes() {
  const tenant = scopeTenant();
  const known = scopes[tenant] || { teams: [], employees: [] };
  const select = $('scope');
  select.replaceChildren(new Option('own dashboard', ''));
  for (const team of known.teams) {
    select.append(new Option(`team ${team.id.slice(0, 8)}… (${team.members.length} members)`, `team:${team.id}`));
  }
  for (const employee of known.employees) {
    select.append(new Option(`employee ${employee.slice(0, 8)}…`, `emp:${employee}`));
  }
  $('scope-label').hidden = !tenant;
}

function minutesAgo(iso) {
  const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 60000));
  return minutes === 1 ? 'computed 1 minute ago' : `computed ${minutes} minutes ago`;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined || text === '' ? '—' : String(text);
  if (className) td.className = className;
  return td;
}

function setBusy(busy) {
  for (const id of ['reload', 'bust', 'clear']) $(id).disabled = busy;
  if (busy) document.body.dataset.state = 'loading';
}

function show(id, text) {
  $(id).textContent = text;
  $(id).hidden = !text;
}

function setOutcome(status, ms, key, generated) {
  $('cache-status').textContent = status;
  $('cache-status').dataset.status = status;
  $('elapsed').textContent = ms === null ? '–' : `${Math.round(ms)} ms`;
  $('cache-key').textContent = key || '';
  $('generated').textContent = generated ? minutesAgo(generated) : '';
  $('generated').title = generated ? when(generated) : '';
}

// A readable sentence for each failure the API reports, from its JSON error body when there is one.
function errorMessage(status, body) {
  const detail = body && body.message ? body.message : `HTTP ${status}`;
  switch (status) {
    case 401:
      return `Not authorised (401): ${detail}. Pick another token, or run make dev again to mint fresh ones.`;
    case 403:
      return `Forbidden (403): ${detail}.`;
    case 404:
      return `Not found (404): ${detail}.`;
    case 503:
      return `Service unavailable (503): ${detail}. Is Postgres (or Redis) running?`;
    default:
      return `The API answered ${status}${body && body.error ? ` (${body.error})` : ''}: ${detail}.`;
  }
}

function finishLoad(state) {
  loads += 1;
  document.body.dataset.state = state;
  document.body.dataset.loads = String(loads);
}

async function load({ bust = false } = {}) {
  const params = new URLSearchParams();
  const tenant = isSuperadmin() ? $('tenant').value : '';
  if (tenant) params.set('tenant_id', tenant);
  const [kind, id] = $('scope').value.split(':');
  if (kind === 'team') params.set('team_id', id);
  if (kind === 'emp') params.set('assigned_to', id);
  params.set('include_test_data', String($('include-test-data').checked));
  if (bust) params.set('bust_cache', 'true');
  const url = `/api/reports/dashboard-bundle?${params}`;

  setBusy(true);
  show('error', '');
  show('message', '');
  const started = performance.now();
  let response;
  let text;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${token()}` }, cache: 'no-store' });
    text = await response.text();
  } catch (e) {
    const ms = performance.now() - started;
    setBusy(false);
    setOutcome('ERROR', ms, '', null);
    show('error', `Cannot reach the API through ${location.origin} (${e.message}). Is make dev running?`);
    console.error(`[dashboard-bundle] request failed: network error (${e.message})`);
    finishLoad('error');
    refreshOperations();
    return;
  }
  const ms = performance.now() - started;
  setBusy(false);

  let body = null;
  try {
    body = parseBundle(text);
  } catch {
    body = null;
  }
  if (!response.ok || !body || body.status !== 'success') {
    setOutcome('ERROR', ms, '', null);
    show('error', errorMessage(response.status, body));
    console.error(`[dashboard-bundle] request failed: HTTP ${response.status} ${body && body.message ? body.message : ''}`);
    finishLoad('error');
    refreshOperations();
    return;
  }

  const data = body.data;
  const status = response.headers.get('X-Cache') || 'UNKNOWN';
  // A HIT from the function's in-memory level says so in X-Cache-Level.
  const fromMemory = status === 'HIT' && response.headers.get('X-Cache-Level') === 'memory';
  const source = fromMemory ? 'memory' : SOURCES[status] || 'X-Cache not readable';
  const key = cacheKey(data.meta);
  console.log(`[dashboard-bundle] Cache ${status} key=${key} (${source})`);
  lastMeta = data.meta;
  setOutcome(status, ms, key, data.meta.generated_at);
  $('scope-shown').textContent = data.meta.scope ? `scope: ${data.meta.scope}${data.meta.scope_id ? ` ${data.meta.scope_id}` : ''}` : 'scope: global view';
  renderStats(data.stats);
  renderBreakdowns(data.stats.leadsBySource, data.funnel);
  renderLists(data.lists);
  updateClearLabel();
  finishLoad('loaded');
  refreshOperations();
}

function renderStats(stats) {
  const container = $('stats');
  container.replaceChildren();
  for (const [name, label, kind] of STATS) {
    const card = document.createElement('div');
    card.className = 'card';
    card.dataset.stat = name;
    const labelEl = document.createElement('div');
    labelEl.className = 'label';
    labelEl.textContent = label;
    const valueEl = document.createElement('div');
    valueEl.className = 'value';
    valueEl.textContent = kind === 'money' ? money(stats[name]) : countFormat.format(stats[name]);
    card.append(labelEl, valueEl);
    container.append(card);
  }
}

// Leads by source and the funnel (a tenant's scopes; the global view has neither).
function renderBreakdowns(sources, funnel) {
  const sourceRows = Object.entries(sources || {});
  for (const [row, [source, leads]] of fillTable('leadsBySource', sourceRows, 2, 'breakdown') || []) {
    cell(row, source);
    cell(row, countFormat.format(leads), 'num');
  }
  for (const [row, stage] of fillTable('funnel', funnel || [], 3, 'breakdown') || []) {
    cell(row, stage.stage === null ? '(no stage)' : stage.stage);
    cell(row, countFormat.format(stage.count), 'num');
    cell(row, money(stage.amount), 'num');
  }
}

function fillTable(name, rows, columns, kind = 'list') {
  const tbody = document.querySelector(`table[data-${kind}="${name}"] tbody`);
  tbody.replaceChildren();
  if (!rows || rows.length === 0) {
    cell(tbody.insertRow(), 'nothing yet', 'empty').colSpan = columns;
    return;
  }
  return rows.map((item) => {
    const row = tbody.insertRow();
    if (item.id) row.dataset.id = item.id;
    return [row, item];
  });
}

function renderLists(lists) {
  for (const [row, a] of fillTable('recentActivities', lists.recentActivities, 4) || []) {
    cell(row, a.type);
    cell(row, a.subject);
    cell(row, a.status);
    cell(row, when(a.created_date || a.created_at));
  }
  for (const [row, l] of fillTable('recentLeads', lists.recentLeads, 4) || []) {
    cell(row, [l.first_name, l.last_name].filter(Boolean).join(' '));
    cell(row, l.company);
    cell(row, l.status);
    cell(row, when(l.created_date));
  }
  for (const [row, o] of fillTable('recentOpportunities', lists.recentOpportunities, 4) || []) {
    cell(row, o.name);
    cell(row, money(o.amount), 'num');
    cell(row, o.stage);
    cell(row, when(o.updated_at));
  }
}

// The tenant the clear button clears: the picked one for a superadmin (none: every tenant), otherwise
// the tenant of the bundle on screen (none yet: the API clears the admin's own tenant for `{}`).
function clearTarget() {
  if (isSuperadmin()) return $('tenant').value || null;
  return lastMeta && lastMeta.tenant_id ? lastMeta.tenant_id : null;
}

function updateClearLabel() {
  $('clear').textContent = isSuperadmin() && !clearTarget() ? "Clear every tenant's cache" : "Clear this tenant's cache";
}

async function clearCache() {
  const tenant = clearTarget();
  setBusy(true);
  show('error', '');
  show('message', '');
  try {
    const response = await fetch('/api/reports/clear-cache', {
      method: 'POST',
      headers: { Authorization: `Bearer ${token()}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(tenant ? { tenant_id: tenant } : {}),
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (response.ok && body) {
      show('message', `${body.message}.`);
      console.info(`[dashboard-bundle] ${body.message}`);
    } else {
      show('error', errorMessage(response.status, body));
    }
  } catch (e) {
    show('error', `Cannot reach the API through ${location.origin} (${e.message}). Is make dev running?`);
  } finally {
    setBusy(false);
    document.body.dataset.cleared = String(Number(document.body.dataset.cleared || 0) + 1);
  }
}

async function refreshOperations() {
  try {
    const response = await fetch('/api/system/health', { cache: 'no-store' });
    const health = await response.json();
    $('health-status').textContent = health.status;
    $('health-status').dataset.status = health.status;
    const latency = health.latency_ms || {};
    $('health-detail').textContent = `redis ${health.redis_cache} (${latency.redis_cache} ms), ` +
      `database ${health.database} (${latency.database} ms)`;
  } catch (e) {
    $('health-status').textContent = 'unreachable';
    $('health-status').dataset.status = 'unreachable';
    $('health-detail').textContent = e.message;
  }

  const tbody = $('warm-runs').tBodies[0];
  try {
    const response = await fetch('/dev/warm-runs', { cache: 'no-store' });
    const runs = await response.json();
    tbody.replaceChildren();
    if (!response.ok) throw new Error(runs.message || `HTTP ${response.status}`);
    if (runs.length === 0) {
      cell(tbody.insertRow(), 'No warm run recorded yet (make warm runs one).', 'empty').colSpan = 8;
    }
    for (const run of runs) {
      const row = tbody.insertRow();
      cell(row, run.trigger);
      cell(row, when(run.started_at));
      const took = run.finished_at ? `${((Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000).toFixed(1)} s` : 'running or died';
      cell(row, took);
      cell(row, countFormat.format(run.tenants_total), 'num');
      cell(row, countFormat.format(run.bundles_warmed), 'num');
      cell(row, countFormat.format(run.failures), 'num');
      cell(row, countFormat.format(run.skipped_deadline), 'num');
      cell(row, run.error_summary);
    }
  } catch (e) {
    tbody.replaceChildren();
    cell(tbody.insertRow(), `Warm runs unavailable: ${e.message}`, 'empty').colSpan = 8;
  }
}

async function loadTenants() {
  if (tenantsLoaded) return;
  try {
    const response = await fetch('/dev/tenants', { cache: 'no-store' });
    const tenants = await response.json();
    if (!response.ok) throw new Error(tenants.message || `HTTP ${response.status}`);
    for (const t of tenants) {
      const option = document.createElement('option');
      option.value = t.id;
      option.textContent = `${t.name} (${t.slug}${t.status === 'active' ? '' : `, ${t.status}`})`;
      $('tenant').append(option);
    }
    tenantsLoaded = true;
  } catch (e) {
    show('error', `Could not list the tenants: ${e.message}`);
  }
}

async function onTokenChange() {
  $('custom-token').hidden = $('token').value !== 'custom';
  const superadmin = isSuperadmin();
  $('tenant-label').hidden = !superadmin;
  if (superadmin) await loadTenants();
  fillScopes();
  lastMeta = null;
  updateClearLabel();
  if ($('token').value !== 'custom' || token()) await load();
}

async function start() {
  try {
    const response = await fetch('/dev/config', { cache: 'no-store' });
    config = await response.json();
  } catch (e) {
    show('error', `The dev web server did not answer /dev/config (${e.message}).`);
    return;
  }
  $('reload').addEventListener('click', () => load());
  $('bust').addEventListener('click', () => load({ bust: true }));
  $('clear').addEventListener('click', () => clearCache());
  $('token').addEventListener('change', onTokenChange);
  $('custom-token').addEventListener('change', () => load());
  try {
    scopes = await (await fetch('/dev/scopes', { cache: 'no-store' })).json();
  } catch {
    scopes = {};
  }
  $('tenant').addEventListener('change', () => {
    fillScopes();
    updateClearLabel();
    load();
  });
  $('scope').addEventListener('change', () => load());
  $('include-test-data').addEventListener('change', () => load());
  // "computed N minutes ago" keeps counting while the page is open.
  setInterval(() => {
    if (lastMeta) $('generated').textContent = minutesAgo(lastMeta.generated_at);
  }, 15000);
  await onTokenChange();
}

start();
