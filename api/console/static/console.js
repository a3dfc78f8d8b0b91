/* LLM Analytics Hub console: shared helpers (state in the URL, API calls, charts, tables, CSV, live).
 *
 * Every number comes from the public API (/api/v1/*) called with the user's key (sessionStorage,
 * sent as "Authorization: Bearer"). Data is only ever rendered with textContent or by ECharts on a
 * canvas, never parsed as HTML. Pages register a loader in Hub.pages (pages.js).
 */
(function () {
  'use strict';
  const Hub = (window.Hub = { pages: {}, charts: {}, ready: false, errors: [] });
  const KEY = 'hub.apiKey';
  const DAY = 864e5;
  const RANGES = { '24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY };
  const CARRIED = ['range', 'start', 'end', 'compare', 'tenant', 'environment', 'model', 'team'];
  const FILTER_FIELDS = ['environment', 'model', 'team'];

  // ---------- state from the URL ----------
  const params = new URLSearchParams(location.search);
  Hub.params = params;
  Hub.state = {
    range: RANGES[params.get('range')] || params.get('range') === 'custom' ? params.get('range') : '24h',
    start: params.get('start') || '',
    end: params.get('end') || '',
    compare: params.get('compare') === '1',
    tenant: params.get('tenant') || '',
    environment: params.get('environment') || '',
    model: params.get('model') || '',
    team: params.get('team') || '',
  };
  if (!params.get('range') && Hub.state.start) Hub.state.range = 'custom';

  /** The filter part of the URL (what nav links and drill-downs carry). */
  Hub.carried = function (overrides) {
    const out = new URLSearchParams();
    const s = Object.assign({}, Hub.state, overrides || {});
    for (const k of CARRIED) {
      const v = s[k];
      if (k === 'compare') { if (v) out.set(k, '1'); continue; }
      if (k === 'range' && v === '24h') continue;
      if ((k === 'start' || k === 'end') && s.range !== 'custom') continue;
      if (v) out.set(k, v);
    }
    return out;
  };

  /** The time window: {start, end, span, bucket, prevStart, prevEnd} (Dates; bucket for /api/v1/query). */
  Hub.window = function () {
    const s = Hub.state;
    let end = new Date();
    let start;
    if (s.range === 'custom' && s.start) {
      start = new Date(s.start);
      if (s.end) end = new Date(s.end);
    }
    if (!start || isNaN(start) || isNaN(end) || start >= end) {
      end = new Date();
      start = new Date(end - (RANGES[s.range] || DAY));
    }
    const span = end - start;
    const bucket = span <= 2 * DAY ? '1h' : span <= 10 * DAY ? '6h' : '1d';
    return { start, end, span, bucket, prevStart: new Date(start - span), prevEnd: start };
  };
  Hub.bucketMs = { '1m': 6e4, '5m': 3e5, '15m': 9e5, '1h': 36e5, '6h': 216e5, '1d': DAY };
  Hub.iso = (d) => new Date(d).toISOString().replace(/\.\d{3}Z$/, 'Z');
  function localInput(d) {
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  // ---------- formatting ----------
  const nf = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  Hub.fmt = {
    num: (v) => (v == null || isNaN(v) ? '–' : Math.abs(v) >= 1e6 ? nf.format(v / 1e6) + ' M' : Math.abs(v) >= 1e4 ? nf.format(v / 1e3) + ' k' : nf.format(v)),
    int: (v) => (v == null ? '–' : Math.round(v).toLocaleString('en-US')),
    ms: (v) => (v == null || isNaN(v) ? '–' : v >= 1e4 ? (v / 1e3).toFixed(1) + ' s' : Math.round(v) + ' ms'),
    usd: (v) => (v == null || isNaN(v) ? '–' : '$' + (Math.abs(v) >= 100 ? nf.format(v) : Number(v).toFixed(v !== 0 && Math.abs(v) < 0.1 ? 4 : 2))),
    pct: (v) => (v == null || isNaN(v) ? '–' : (v * 100).toFixed(1) + ' %'),
    time: (v) => (v ? new Date(typeof v === 'number' && v < 1e11 ? v * 1000 : v).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/:00Z$/, 'Z') : ''),
  };

  // ---------- API ----------
  class ApiError extends Error {
    constructor(status, message, path) { super(message); this.status = status; this.path = path; }
  }
  Hub.ApiError = ApiError;
  Hub.key = () => sessionStorage.getItem(KEY) || '';
  Hub.authHeaders = function () {
    const h = {};
    const k = Hub.key();
    if (k) h.Authorization = 'Bearer ' + k;
    if (Hub.state.tenant) h['X-Scope-OrgID'] = Hub.state.tenant;
    return h;
  };
  let askedKey = false;
  /** fetch a JSON API; throws ApiError (status 404 = the endpoint does not exist on this hub). */
  Hub.api = async function (path, opts) {
    opts = opts || {};
    const headers = Object.assign({ Accept: 'application/json' }, Hub.authHeaders());
    let body;
    if (opts.body !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(opts.body); }
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(opts.params || {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
    }
    const resp = await fetch(url, { method: opts.method || (body !== undefined ? 'POST' : 'GET'), headers, body });
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    if (!resp.ok) {
      const msg = (data && data.error && data.error.message) || (data && data.detail) || resp.statusText;
      if (resp.status === 401 && !askedKey) { askedKey = true; Hub.askKey('The hub needs an API key: ' + msg); }
      throw new ApiError(resp.status, String(msg), path);
    }
    return data;
  };

  // Which endpoints this hub has, from its public OpenAPI description (so missing ones are not called).
  let spec = null;
  Hub.spec = function () {
    if (!spec) {
      spec = fetch('/openapi.json').then((r) => (r.ok ? r.json() : null)).then((j) => (j && j.paths) || null).catch(() => null);
    }
    return spec;
  };
  /** The first path template of a method matching the regexp, or null; `undefined` if unknown (no spec). */
  Hub.findPath = async function (method, re) {
    const paths = await Hub.spec();
    if (!paths) return undefined;
    for (const [p, ops] of Object.entries(paths)) if (re.test(p) && ops[method.toLowerCase()]) return p;
    return null;
  };
  Hub.fill = (template, values) => template.replace(/\{[^}]+\}/g, (m) => encodeURIComponent(values[m.slice(1, -1)] ?? values.id));

  /** POST /api/v1/query with the page's window, filters and tenant; `prev` = the previous period. */
  Hub.query = async function (q, opts) {
    opts = opts || {};
    const w = Hub.window();
    const body = Object.assign({}, q);
    const start = opts.prev ? w.prevStart : opts.start || w.start;
    const end = opts.prev ? w.prevEnd : opts.end || w.end;
    // the current window of a relative range goes as {"last"}: the hub caches those for everyone (10 s)
    const relative = !opts.prev && !opts.start && !opts.end && Hub.state.range !== 'custom';
    body.time_range = q.time_range || (relative ? { last: Hub.state.range } : { start: Hub.iso(start), end: Hub.iso(end) });
    body.filters = Hub.filters().concat(q.filters || []);
    if (Hub.state.tenant) body.tenant = Hub.state.tenant;
    if (!body.limit) body.limit = 10000;
    const r = await batched(body);
    return r.data;
  };
  // Queries issued in the same tick (a page's panels) go as one POST /api/v1/query/batch; a hub
  // without that endpoint gets them one by one.
  const BATCH_MAX = 50;
  let pending = [];
  let batchSupported = true; // until the hub answers 404/405 to a batch
  function batched(body) {
    return new Promise((resolve, reject) => {
      pending.push({ body, resolve, reject });
      if (pending.length === 1) setTimeout(flushBatch, 0);
    });
  }
  async function single(item) {
    try { item.resolve(await Hub.api('/api/v1/query', { body: item.body })); } catch (err) { item.reject(err); }
  }
  async function flushBatch() {
    const items = pending;
    pending = [];
    if (!batchSupported || items.length === 1) { await Promise.all(items.map(single)); return; }
    for (let i = 0; i < items.length; i += BATCH_MAX) {
      const chunk = items.slice(i, i + BATCH_MAX);
      const envelope = { queries: chunk.map((it) => { const b = Object.assign({}, it.body); delete b.tenant; return b; }) };
      if (Hub.state.tenant) envelope.tenant = Hub.state.tenant;
      let answer;
      try {
        answer = await Hub.api('/api/v1/query/batch', { body: envelope });
      } catch (err) {
        if (err instanceof ApiError && (err.status === 404 || err.status === 405)) { batchSupported = false; await Promise.all(chunk.map(single)); }
        else chunk.forEach((it) => it.reject(err));
        continue;
      }
      chunk.forEach((it, j) => {
        const res = answer.results[j];
        if (res && res.status === 200) it.resolve(res);
        else it.reject(new ApiError(res ? res.status : 500, (res && res.error && res.error.message) || 'no result', '/api/v1/query'));
      });
    }
  }
  Hub.filters = function () {
    const f = [];
    for (const k of FILTER_FIELDS) if (Hub.state[k]) f.push({ field: k, operator: 'eq', value: Hub.state[k] });
    return f;
  };
  Hub.DURATION = { event_type: 'telemetry', name: 'gen_ai.client.operation.duration' };
  Hub.ofType = (t) => [{ field: 'event_type', operator: 'eq', value: t }];
  /** GET parameters carrying the window and filters for list endpoints. */
  Hub.windowParams = function (extra) {
    const w = Hub.window();
    const p = { start: Hub.iso(w.start), end: Hub.iso(w.end) };
    if (Hub.state.tenant) p.tenant = Hub.state.tenant;
    return Object.assign(p, extra || {});
  };

  // ---------- panels ----------
  function panelOf(id) {
    const el = document.getElementById(id);
    return el ? el.closest('.panel') || el : null;
  }
  function replaceBody(id, node) {
    const el = document.getElementById(id);
    if (!el) return;
    const target = el.closest('.table-wrap') || el;
    let box = target.parentNode.querySelector(':scope > .unavailable, :scope > .error-box');
    if (box) box.remove();
    target.hidden = true;
    target.parentNode.insertBefore(node, target);
  }
  /** A boxed message in place of chart/table `id`. */
  Hub.notice = function (id, title, text, attr) {
    const box = document.createElement('div');
    box.className = 'unavailable';
    if (attr) box.dataset[attr] = id;
    const s = document.createElement('strong');
    s.textContent = title;
    box.append(s, document.createTextNode(text));
    replaceBody(id, box);
  };
  /** Show the "not available yet" panel instead of chart/table `id`. */
  Hub.unavailable = function (id, what, detail) {
    Hub.notice(id, 'Not available yet', `This hub does not offer ${what} yet${detail ? ' (' + detail + ')' : ''}.`, 'unavailable');
  };
  /** Work that may finish after the page counts as loaded (slow model calls); Hub.settled waits for it. */
  const laters = [];
  Hub.later = function (id, what, fn) { laters.push(Hub.panel(id, what, fn)); };
  Hub.showError = function (id, err) {
    const box = document.createElement('div');
    box.className = 'error-box';
    box.textContent = 'Could not load: ' + (err && err.message ? err.message : String(err));
    replaceBody(id, box);
  };
  /** Run one panel's loader; a 404 becomes "not available yet", other errors an error box. */
  Hub.timings = {};
  Hub.panel = async function (id, what, fn) {
    const t0 = performance.now();
    try {
      await fn();
      Hub.timings[id] = Math.round(performance.now() - t0);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) Hub.unavailable(id, what, `${err.path} answered ${err.status}`);
      else { Hub.errors.push(String(err && err.message)); Hub.showError(id, err); }
    }
  };
  Hub.explain = function (id, text) {
    const el = document.getElementById(id + '-explain');
    if (el) el.textContent = text || '';
  };

  // ---------- charts ----------
  const PALETTE = ['#2f6fed', '#e8833a', '#2e9d5b', '#c62828', '#8e44ad', '#00838f', '#b26a00', '#5b6478', '#d81b60', '#558b2f'];
  Hub.chart = function (id, option, onClick) {
    const el = document.getElementById(id);
    if (!el || !window.echarts) return null;
    el.hidden = false;
    const box = el.parentNode.querySelector(':scope > .unavailable, :scope > .error-box');
    if (box) box.remove();
    const c = echarts.getInstanceByDom(el) || echarts.init(el);
    const base = {
      animation: false, color: PALETTE,
      grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
      tooltip: { trigger: 'axis', confine: true },
      legend: { type: 'scroll', top: 0 },
    };
    // long category names (a model or team is whatever the sources send) are cut, not allowed to squeeze the plot
    for (const ax of [].concat(option.yAxis || [], option.xAxis || [])) {
      if (!ax) continue;
      const fit = ax.type === 'category' ? { width: 150, overflow: 'truncate' } : { hideOverlap: true };
      ax.axisLabel = Object.assign(fit, ax.axisLabel || {});
    }
    c.setOption(Object.assign(base, option), true);
    c.off('click');
    if (onClick) c.on('click', onClick);
    Hub.charts[id] = c;
    return c;
  };
  window.addEventListener('resize', () => Object.values(Hub.charts).forEach((c) => c.resize()));
  /** Bucketed query rows → {group: [[ms, value], ...]} (one group "" when not grouped). */
  Hub.toSeries = function (rows, valueKey, groupKey, shiftMs) {
    const out = {};
    for (const r of rows) {
      const g = groupKey ? String(r[groupKey] ?? '(none)') : '';
      (out[g] = out[g] || []).push([Date.parse(r.bucket) + (shiftMs || 0), r[valueKey]]);
    }
    return out;
  };
  Hub.timeAxis = function () {
    const w = Hub.window();
    return { type: 'time', min: w.start.getTime(), max: w.end.getTime() };
  };
  /** The previous period as a dashed line shifted onto the current window. */
  Hub.prevLine = function (name, points) {
    return { name, type: 'line', data: points, showSymbol: false, lineStyle: { type: 'dashed', width: 1 }, itemStyle: { color: '#9aa3b5' } };
  };

  // ---------- tables and CSV ----------
  /** columns: [{key, label, num, fmt(v,row), node(row) -> Node}] ; opts.onRow(row, tr). */
  Hub.table = function (id, columns, rows, opts) {
    opts = opts || {};
    const t = document.getElementById(id);
    if (!t) return;
    const wrap = t.closest('.table-wrap');
    if (wrap) wrap.hidden = false;
    const head = t.tHead;
    const body = t.tBodies[0];
    head.replaceChildren();
    body.replaceChildren();
    const hr = head.insertRow();
    for (const c of columns) {
      const th = document.createElement('th');
      th.textContent = c.label;
      if (c.num) th.className = 'num';
      hr.appendChild(th);
    }
    if (!rows.length) {
      const td = body.insertRow().insertCell();
      td.colSpan = columns.length;
      td.textContent = opts.empty || 'No data in this window.';
      td.className = 'empty';
      return;
    }
    for (const row of rows) {
      const tr = body.insertRow();
      for (const c of columns) {
        const td = tr.insertCell();
        if (c.num) td.className = 'num';
        if (c.cls) td.classList.add(c.cls);
        if (c.node) {
          const n = c.node(row);
          if (n) td.appendChild(n);
          if (c.csv) td.dataset.csv = c.csv(row);
        } else {
          const v = row[c.key];
          td.textContent = c.fmt ? c.fmt(v, row) : v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
          // CSV gets the number itself, not its display form ("12938", not "12,938"; 0.919, not "91.9 %")
          if (c.num && c.fmt && typeof v === 'number' && Number.isFinite(v)) td.dataset.csv = String(v);
        }
      }
      if (opts.onRow) {
        tr.classList.add('clickable');
        tr.tabIndex = 0;
        tr.addEventListener('click', (ev) => { if (!ev.target.closest('button, a')) opts.onRow(row, tr); });
      }
    }
  };
  function csvCell(s) {
    s = String(s);
    if (/^[=+@\t\r]/.test(s) || (/^-/.test(s) && isNaN(Number(s)))) s = "'" + s; // no formulas in spreadsheets
    return /[",\n\r]/.test(s) || /^\s|\s$/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  /** The table `id` as CSV text (what the Export CSV button downloads). */
  Hub.csv = function (id) {
    const t = document.getElementById(id);
    const lines = [];
    for (const tr of t.querySelectorAll('tr')) {
      if (tr.querySelector('td.empty')) continue;
      lines.push(Array.from(tr.cells, (c) => csvCell(c.dataset.csv ?? c.textContent)).join(','));
    }
    return lines.join('\r\n') + '\r\n';
  };
  Hub.download = function (name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type: type || 'text/csv' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  // ---------- drill-down ----------
  /** Go to the raw events behind a point: extra = {start, end (Dates or ISO), event_type, tags.x, ...}. */
  Hub.drillUrl = function (extra) {
    const p = Hub.carried({ range: 'custom', start: '', end: '' });
    p.set('range', 'custom');
    for (const [k, v] of Object.entries(extra || {})) {
      if (v === undefined || v === null || v === '') continue;
      p.set(k, v instanceof Date ? Hub.iso(v) : String(v));
    }
    if (!p.get('start')) { const w = Hub.window(); p.set('start', Hub.iso(w.start)); p.set('end', Hub.iso(w.end)); }
    return '/console/events?' + p.toString();
  };
  Hub.drill = (extra) => { location.href = Hub.drillUrl(extra); };
  /** A drill extra for a time-axis point of a bucketed chart. */
  Hub.bucketWindow = function (ms, bucket) {
    return { start: new Date(ms), end: new Date(ms + Hub.bucketMs[bucket || Hub.window().bucket]) };
  };

  // ---------- live updates (SSE over fetch, so the Authorization header goes along) ----------
  Hub.live = function (path, params, handlers) {
    const el = document.getElementById('live');
    let stopped = false;
    async function connect() {
      while (!stopped) {
        try {
          const url = new URL(path, location.origin);
          for (const [k, v] of Object.entries(params)) if (v) url.searchParams.set(k, v);
          const resp = await fetch(url, { headers: Object.assign({ Accept: 'text/event-stream' }, Hub.authHeaders()) });
          if (resp.status === 404 || resp.status === 401 || resp.status === 403) { el.textContent = 'live updates off'; return; }
          if (!resp.ok || !resp.body) throw new Error('stream ' + resp.status);
          const reader = resp.body.getReader();
          const dec = new TextDecoder();
          let buf = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += dec.decode(value, { stream: true });
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const chunk = buf.slice(0, i);
              buf = buf.slice(i + 2);
              let ev = 'message';
              const data = [];
              for (const line of chunk.split('\n')) {
                if (line.startsWith('event:')) ev = line.slice(6).trim();
                else if (line.startsWith('data:')) data.push(line.slice(5).trim());
              }
              if (!data.length) continue;
              el.classList.add('on');
              el.textContent = 'live · ' + new Date().toLocaleTimeString();
              if (handlers[ev]) handlers[ev](JSON.parse(data.join('\n')));
            }
          }
        } catch (e) {
          el.classList.remove('on');
          el.textContent = 'reconnecting…';
        }
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
    connect();
    return () => { stopped = true; };
  };

  // ---------- chrome: filters, nav, key ----------
  Hub.askKey = function (message) {
    const d = document.getElementById('key-dialog');
    if (!d || d.open) return;
    const p = d.querySelector('p');
    if (message) p.textContent = message;
    d.showModal();
  };
  function initChrome() {
    const form = document.getElementById('filters');
    const s = Hub.state;
    form.range.value = s.range;
    const w = Hub.window();
    form.start.value = localInput(s.range === 'custom' ? w.start : w.start);
    form.end.value = localInput(w.end);
    form.compare.checked = s.compare;
    for (const k of ['tenant', 'environment', 'model', 'team']) form[k].value = s[k];
    const toggleCustom = () => form.classList.toggle('custom-on', form.range.value === 'custom');
    toggleCustom();
    form.range.addEventListener('change', toggleCustom);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const next = {
        range: form.range.value, compare: form.compare.checked,
        start: form.range.value === 'custom' && form.start.value ? Hub.iso(new Date(form.start.value)) : '',
        end: form.range.value === 'custom' && form.end.value ? Hub.iso(new Date(form.end.value)) : '',
      };
      for (const k of ['tenant', 'environment', 'model', 'team']) next[k] = form[k].value.trim();
      const keep = new URLSearchParams(location.search);
      const out = Hub.carried(next);
      for (const [k, v] of keep) if (!CARRIED.includes(k)) out.set(k, v); // page-specific (e.g. events' extra filters)
      location.search = out.toString();
    });
    document.getElementById('f-share').addEventListener('click', (ev) => {
      ev.preventDefault();
      const link = location.href;
      if (navigator.clipboard) navigator.clipboard.writeText(link).catch(() => {});
      ev.target.textContent = 'Link copied';
    });
    const carried = Hub.carried().toString();
    for (const a of document.querySelectorAll('a[data-nav]')) if (carried) a.href = a.getAttribute('href') + '?' + carried;
    const navBtn = document.getElementById('nav-toggle');
    navBtn.addEventListener('click', () => {
      const nav = document.getElementById('nav');
      nav.classList.toggle('open');
      navBtn.setAttribute('aria-expanded', String(nav.classList.contains('open')));
    });
    // the key dialog
    const dlg = document.getElementById('key-dialog');
    document.getElementById('key-button').addEventListener('click', () => Hub.askKey());
    dlg.addEventListener('close', () => {
      if (dlg.returnValue === 'save') {
        const v = document.getElementById('key-input').value.trim();
        if (v) { sessionStorage.setItem(KEY, v); location.reload(); }
      } else if (dlg.returnValue === 'clear') { sessionStorage.removeItem(KEY); location.reload(); }
    });
    document.getElementById('key-button').textContent = Hub.key() ? 'API key ✓' : 'API key';
    // CSV buttons
    for (const b of document.querySelectorAll('button[data-csv]')) {
      b.addEventListener('click', () => Hub.download(`${b.dataset.csv.replace(/^t-/, '')}-${Hub.iso(new Date())}.csv`, Hub.csv(b.dataset.csv)));
    }
    // filter suggestions, on first focus
    for (const k of ['environment', 'model', 'team']) {
      form[k].addEventListener('focus', () => suggest(k), { once: true });
    }
  }
  async function suggest(field) {
    try {
      const rows = await Hub.query({ filters: [], aggregation: { functions: ['count'], group_by: [field] }, sort: [{ field: 'count', order: 'desc' }], limit: 50 });
      const dl = document.getElementById('dl-' + field);
      dl.replaceChildren(...rows.filter((r) => r[field]).map((r) => Object.assign(document.createElement('option'), { value: r[field] })));
    } catch (e) { /* suggestions are optional */ }
  }

  Hub.refreshMs = 20000;
  async function run() {
    initChrome();
    const name = document.body.dataset.page;
    const loader = Hub.pages[name];
    const t0 = performance.now();
    if (loader) {
      try { await loader(); } catch (e) { Hub.errors.push(String(e && e.message)); }
    }
    Hub.loadMs = performance.now() - t0;
    Hub.ready = true;
    document.body.dataset.ready = '1';
    // charts and tables follow the data: re-run the page loader (relative ranges only)
    const live = document.getElementById('live');
    if (Hub.state.range !== 'custom' && loader && loader.refresh !== false) {
      if (!live.classList.contains('on')) live.textContent = 'auto-refresh ' + Hub.refreshMs / 1000 + ' s';
      setInterval(() => { if (!document.hidden) loader({ refresh: true }).catch(() => {}); }, Hub.refreshMs);
    } else if (!live.classList.contains('on')) live.textContent = 'fixed window';
    while (laters.length) await Promise.allSettled(laters.splice(0));
    Hub.settled = true;
  }
  if (document.readyState !== "complete") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
