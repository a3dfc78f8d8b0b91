/* LLM Analytics Hub console: one loader per page (Hub.pages[name]), run by console.js.
 * Loaders only call the public API through Hub.query / Hub.api and render with Hub.chart / Hub.table.
 */
(function () {
  'use strict';
  const Hub = window.Hub;
  const F = Hub.fmt;
  const P = Hub.pages;
  const sum = (a) => a.reduce((x, y) => x + (y || 0), 0);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text != null) e.textContent = text; if (cls) e.className = cls; return e; };
  const link = (text, href) => { const a = el('a', text); a.href = href; return a; };
  const byKey = (rows, key, val) => Object.fromEntries(rows.map((r) => [String(r[key] ?? '(none)'), r[val]]));
  const count = (filters, extra) => Object.assign({ filters, aggregation: { functions: ['count'] } }, extra || {});

  // ================= executive summary =================
  async function summaryOf(opts) {
    const [req, cost, thr, comp] = await Promise.all([
      Hub.query({ metric: Hub.DURATION, aggregation: { functions: ['count', 'p95'] } }, opts),
      Hub.query({ metric: { event_type: 'cost' }, aggregation: { functions: ['sum'] } }, opts),
      Hub.query(count(Hub.ofType('security')), opts),
      Hub.query(count(Hub.ofType('governance'), { aggregation: { functions: ['count'], group_by: ['payload.compliant'] } }), opts),
    ]);
    const c = byKey(comp, 'payload.compliant', 'count');
    const total = sum(Object.values(c));
    const requests = (req[0] || {}).count || 0;
    const usd = (cost[0] || {}).sum || 0;
    return {
      // cost per request = USD of cost events / requests: the cost_per_request composite, from the two sums
      requests, p95_ms: (req[0] || {}).p95, cost_usd: usd, cost_per_request: requests ? usd / requests : null, threats: (thr[0] || {}).count || 0,
      compliance_rate: total ? (c.true || 0) / total : null,
    };
  }
  const KPI_FMT = { requests: F.int, p95_ms: F.ms, cost_usd: F.usd, cost_per_request: F.usd, threats: F.int, compliance_rate: F.pct };
  const KPI_GOOD_UP = { requests: true, compliance_rate: true };
  let prevSummary = null;
  function setKpis(cur, prev) {
    for (const [k, fmt] of Object.entries(KPI_FMT)) {
      const v = document.getElementById('kpi-' + k);
      if (!v) continue;
      v.textContent = fmt(cur[k]);
      const d = document.getElementById('kpi-' + k + '-delta');
      d.className = 'kpi-delta' + (KPI_GOOD_UP[k] ? ' good' : '');
      d.textContent = '';
      if (prev && prev[k] != null && cur[k] != null) {
        const change = k === 'compliance_rate' ? (cur[k] - prev[k]) * 100 : prev[k] ? ((cur[k] - prev[k]) / prev[k]) * 100 : null;
        if (change == null) { d.textContent = 'previous: ' + fmt(prev[k]); continue; }
        d.classList.add(change > 0 ? 'up' : change < 0 ? 'down' : 'flat');
        d.textContent = `${change > 0 ? '▲' : change < 0 ? '▼' : '='} ${Math.abs(change).toFixed(1)}${k === 'compliance_rate' ? ' pt' : ' %'} vs previous (${fmt(prev[k])})`;
      }
    }
  }
  P.summary = async function (opts) {
    const refresh = opts && opts.refresh;
    await Promise.all([
      Hub.panel('kpis', 'summary figures', async () => {
        const [cur, prev] = await Promise.all([summaryOf(), Hub.state.compare ? summaryOf({ prev: true }) : null]);
        prevSummary = prev;
        setKpis(cur, prev);
      }),
      Hub.panel('c-requests', 'request series', requestsChart),
      refresh ? null : Hub.panel('t-top-usage', 'top models', topModels),
    ]);
    if (!refresh && Hub.state.range !== 'custom') {
      const s = Hub.state;
      Hub.live('/console/stream', { last: s.range, tenant: s.tenant, environment: s.environment, model: s.model, team: s.team }, {
        summary: (data) => setKpis(data, prevSummary),
      });
    }
  };
  async function requestsChart() {
    const w = Hub.window();
    const q = { metric: Hub.DURATION, aggregation: { functions: ['count', 'p95'], time_bucket: w.bucket } };
    const [rows, prev] = await Promise.all([Hub.query(q), Hub.state.compare ? Hub.query(q, { prev: true }) : []]);
    const series = [
      { name: 'requests', type: 'bar', data: Hub.toSeries(rows, 'count')[''] || [], barMaxWidth: 18 },
      { name: 'p95 latency (ms)', type: 'line', yAxisIndex: 1, data: Hub.toSeries(rows, 'p95')[''] || [], showSymbol: rows.length <= 48 },
    ];
    if (Hub.state.compare) series.push(Hub.prevLine('requests, previous period', Hub.toSeries(prev, 'count', null, w.span)[''] || []));
    Hub.chart('c-requests', {
      xAxis: Hub.timeAxis(), yAxis: [{ type: 'value', name: 'requests' }, { type: 'value', name: 'ms', splitLine: { show: false } }], series,
    }, (p) => Hub.drill(Object.assign({ event_type: 'telemetry' }, Hub.bucketWindow(p.value[0]))));
  }
  /** The page's window in words: "Last 7 d", or "start – end" for a custom range (table headings). */
  function windowLabel() {
    const s = Hub.state;
    if (s.range !== 'custom') return { '24h': 'Last 24 h', '7d': 'Last 7 d', '30d': 'Last 30 d' }[s.range] || s.range;
    const w = Hub.window();
    return `${F.time(w.start)} – ${F.time(w.end)}`;
  }
  /** Top 10 models by requests and by cost over the page's window: the same Hub.query window and filters
   * as the charts (a custom start/end goes as {start, end}, a relative range as {last}), and the previous
   * period as a second column when "vs previous period" is on. */
  async function topModels() {
    const compare = Hub.state.compare;
    const top = (metric, fn, opts) => Hub.query({ metric, aggregation: { functions: [fn], group_by: ['model'] }, sort: [{ field: fn, order: 'desc' }], limit: 10 }, opts);
    const ofModels = (metric, fn) => (compare ? Hub.query({ metric, aggregation: { functions: [fn], group_by: ['model'] } }, { prev: true }) : []);
    const [usage, cost, usagePrev, costPrev] = await Promise.all([
      top(Hub.DURATION, 'count'), top({ event_type: 'cost' }, 'sum'), ofModels(Hub.DURATION, 'count'), ofModels({ event_type: 'cost' }, 'sum'),
    ]);
    const label = windowLabel();
    const table = (id, rows, prevRows, key, fmt) => {
      const prev = byKey(prevRows, 'model', key);
      const columns = [{ key: 'model', label: 'Model' }, { key: 'value', label, num: true, fmt }];
      if (compare) columns.push({ key: 'prev', label: 'Previous period', num: true, fmt });
      const out = rows.map((r) => ({ model: String(r.model ?? '(none)'), value: r[key], prev: prev[String(r.model ?? '(none)')] }));
      Hub.table(id, columns, out, { onRow: (r) => { location.href = '/console/performance?' + Hub.carried({ model: r.model }).toString(); } });
    };
    table('t-top-usage', usage, usagePrev, 'count', (v) => (v == null ? '0' : F.int(v)));
    table('t-top-cost', cost, costPrev, 'sum', (v) => F.usd(v || 0));
  }

  // ================= performance =================
  P.performance = async function () {
    const w = Hub.window();
    const drillTel = (extra) => (p) => Hub.drill(Object.assign({ event_type: 'telemetry', name: Hub.DURATION.name }, extra || {}, Array.isArray(p.value) ? Hub.bucketWindow(p.value[0]) : {}));
    await Promise.all([
      Hub.panel('c-latency', 'latency series', async () => {
        const q = { metric: Hub.DURATION, aggregation: { functions: ['p50', 'p95', 'p99'], time_bucket: w.bucket } };
        const [rows, prev] = await Promise.all([Hub.query(q), Hub.state.compare ? Hub.query(q, { prev: true }) : []]);
        const series = ['p50', 'p95', 'p99'].map((f) => ({ name: f, type: 'line', data: Hub.toSeries(rows, f)[''] || [], showSymbol: rows.length < 60 }));
        if (Hub.state.compare) series.push(Hub.prevLine('p95, previous period', Hub.toSeries(prev, 'p95', null, w.span)[''] || []));
        Hub.chart('c-latency', { xAxis: Hub.timeAxis(), yAxis: { type: 'value', name: 'ms' }, series }, drillTel());
      }),
      Hub.panel('c-histogram', 'latency histogram', async () => {
        const edges = [0, 250, 500, 1000, 2000, 4000, 8000, 16000, 32000, null];
        const counts = await Promise.all(edges.slice(0, -1).map((lo, i) => {
          const f = [{ field: 'value', operator: 'gte', value: lo }];
          if (edges[i + 1] != null) f.push({ field: 'value', operator: 'lt', value: edges[i + 1] });
          return Hub.query({ metric: Hub.DURATION, filters: f, aggregation: { functions: ['count'] } }).then((r) => (r[0] || {}).count || 0);
        }));
        const labels = edges.slice(0, -1).map((lo, i) => (edges[i + 1] == null ? `≥ ${F.ms(lo)}` : `${F.ms(lo)}–${F.ms(edges[i + 1])}`));
        Hub.chart('c-histogram', {
          legend: { show: false }, xAxis: { type: 'category', data: labels, axisLabel: { rotate: 30 } }, yAxis: { type: 'value', name: 'requests' },
          series: [{ name: 'requests', type: 'bar', data: counts }],
        }, drillTel());
      }),
      Hub.panel('c-throughput', 'throughput', async () => {
        const [rows, err] = await Promise.all([
          Hub.query({ metric: Hub.DURATION, aggregation: { functions: ['count'], time_bucket: w.bucket } }),
          Hub.query({ metric: 'error_rate', aggregation: { time_bucket: w.bucket } }),
        ]);
        const perMin = 60000 / Hub.bucketMs[w.bucket];
        Hub.chart('c-throughput', {
          xAxis: Hub.timeAxis(), yAxis: [{ type: 'value', name: 'req/min' }, { type: 'value', name: 'error %', splitLine: { show: false } }],
          series: [
            { name: 'requests / min', type: 'line', data: rows.map((r) => [Date.parse(r.bucket), +(r.count * perMin).toFixed(3)]), showSymbol: false, areaStyle: { opacity: 0.15 } },
            { name: 'error rate %', type: 'line', yAxisIndex: 1, data: err.map((r) => [Date.parse(r.bucket), r.error_rate == null ? null : +(r.error_rate * 100).toFixed(2)]), showSymbol: false },
          ],
        }, drillTel());
      }),
      Hub.panel('c-heatmap', 'error heatmap', async () => {
        const rows = await Hub.query({ filters: Hub.ofType('telemetry').concat([{ field: 'status', operator: 'eq', value: 'error' }]), aggregation: { functions: ['count'], time_bucket: '1h', group_by: ['model'] } });
        const models = Array.from(new Set(rows.map((r) => String(r.model ?? '(none)')))).sort();
        const cells = {};
        for (const r of rows) {
          const k = `${new Date(r.bucket).getUTCHours()}|${String(r.model ?? '(none)')}`;
          cells[k] = (cells[k] || 0) + r.count;
        }
        const data = Object.entries(cells).map(([k, v]) => { const [h, m] = k.split('|'); return [Number(h), models.indexOf(m), v]; });
        const max = Math.max(1, ...data.map((d) => d[2]));
        Hub.chart('c-heatmap', {
          tooltip: { position: 'top' }, legend: { show: false }, grid: { left: 8, right: 16, top: 10, bottom: 50, containLabel: true },
          xAxis: { type: 'category', data: Array.from({ length: 24 }, (_, h) => String(h).padStart(2, '0')), name: 'hour', splitArea: { show: true } },
          yAxis: { type: 'category', data: models, splitArea: { show: true } },
          visualMap: { min: 0, max, calculable: true, orient: 'horizontal', left: 'center', bottom: 0, itemHeight: 80, inRange: { color: ['#fff5f0', '#fb6a4a', '#a50f15'] } },
          series: [{ name: 'errors', type: 'heatmap', data, label: { show: models.length * 24 < 200 && data.length < 120 } }],
        }, (p) => Hub.drill({ event_type: 'telemetry', status: 'error', model: models[p.value[1]] }));
        Hub.explain('c-heatmap', data.length ? '' : 'No errors in this window.');
      }),
      Hub.panel('t-models', 'latency by model', async () => {
        const [rows, errs] = await Promise.all([
          Hub.query({ metric: Hub.DURATION, aggregation: { functions: ['count', 'p50', 'p95', 'p99'], group_by: ['model'] }, sort: [{ field: 'count', order: 'desc' }] }),
          Hub.query({ metric: 'error_rate', aggregation: { group_by: ['model'] } }),
        ]);
        const er = byKey(errs, 'model', 'error_rate');
        Hub.table('t-models', [
          { key: 'model', label: 'Model' }, { key: 'count', label: 'Requests', num: true, fmt: F.int },
          { key: 'p50', label: 'p50', num: true, fmt: F.ms }, { key: 'p95', label: 'p95', num: true, fmt: F.ms }, { key: 'p99', label: 'p99', num: true, fmt: F.ms },
          { key: 'model', label: 'Error rate', num: true, fmt: (m) => F.pct(er[String(m ?? '(none)')]) },
        ], rows, { onRow: (r) => Hub.drill({ event_type: 'telemetry', model: r.model }) });
      }),
    ]);
  };

  // ================= cost =================
  function linearProjection(points, days) {
    const n = points.length;
    const xs = points.map((p) => p[0] / 864e5);
    const ys = points.map((p) => p[1]);
    const mx = sum(xs) / n;
    const my = sum(ys) / n;
    let sxy = 0;
    let sxx = 0;
    for (let i = 0; i < n; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; }
    const b = sxx && n >= 14 ? sxy / sxx : 0; // a trend only from two weeks of days; else the mean level
    const a = my - b * mx;
    const resid = ys.map((y, i) => y - (a + b * xs[i]));
    const sd = Math.sqrt(sum(resid.map((r) => r * r)) / Math.max(1, n - 2)) || my * 0.2;
    const last = points[n - 1][0];
    const out = [];
    for (let h = 1; h <= days; h++) {
      const t = last + h * 864e5;
      const y = Math.max(0, a + b * (t / 864e5));
      const half = 1.96 * sd * Math.sqrt(1 + h / n);
      out.push({ t, yhat: y, lower: Math.max(0, y - half), upper: y + half });
    }
    return out;
  }
  function pick(o, names) { for (const n of names) if (o && o[n] != null) return o[n]; return undefined; }
  // ---- daily spend forecast from GET /api/v1/forecast ----
  // A day's spend is the sum of its hours, but the quantile of a sum is not the sum of quantiles: adding up
  // the hourly lower and upper bounds gives a band that is right only if every hour's error is as large as
  // it can be, in the same direction, at once (far too wide otherwise). So the console asks the API for
  // daily steps wherever the hub has the history for it: the API then calibrates its interval on whole days
  // (split-conformal on its own daily validation errors), within-day error correlation included. A young
  // hub (fewer than DAILY_MIN_DAYS days of spend) gets hourly steps, aggregated as described at dailyFromHourly.
  const DAY_MS = 864e5;
  const DAILY_MIN_DAYS = 21; // three weekly seasons (hubs keep 30 days by default); the API itself needs 16 points
  const DAILY_MAX_DAYS = 90;
  const HISTORY_BREAK_DAYS = 7; // a week without spend ends the usable history (zeros before it are not data)
  /** How to ask for the forecast, from the daily spend ([[UTC day start ms, USD], ...]) of the days before
   * `today` (UTC midnight, ms): {step: '1d', history: 'Nd'} over the complete days of the unbroken spend
   * history when there are at least DAILY_MIN_DAYS of them, else {step: '1h', history: '14d'}. The first
   * day of the history counts as partial (spend may have started mid-day). */
  function forecastPlan(days, today) {
    const spend = new Map(days.map(([t, v]) => [t, v]));
    let first = null;
    let zeros = 0;
    for (let t = today - DAY_MS; t >= today - (DAILY_MAX_DAYS + 1) * DAY_MS; t -= DAY_MS) {
      if ((spend.get(t) || 0) > 0) { first = t; zeros = 0; } else if (++zeros >= HISTORY_BREAK_DAYS) break;
    }
    const fullDays = first === null ? 0 : Math.round((today - first) / DAY_MS) - 1;
    if (fullDays >= DAILY_MIN_DAYS) return { step: '1d', history: `${Math.min(fullDays, DAILY_MAX_DAYS)}d`, fullDays };
    return { step: '1h', history: '14d', fullDays };
  }
  /** Daily points {t, yhat, lower, upper, n} from hourly forecast points {timestamp, yhat, yhat_lower,
   * yhat_upper}, per UTC day; days with fewer than `minHours` hours are left out (the current day's rest).
   * yhat_day = the sum of the hours' yhat. The band adds the hours' half-widths in quadrature, each side on
   * its own (lower: yhat - yhat_lower, upper: yhat_upper - yhat):
   *   half_day = sqrt(sum over the day's hours of half_h^2)
   * which is exact for independent hourly errors (variances add; the API's bands are a fixed multiple of
   * each hour's error scale). Positively correlated errors (the usual case: a slow hour tends to sit next
   * to slow hours) make the true band wider, between this and the sum of the half-widths (the band when
   * all hours' errors move together), so this band is a lower bound on the width then. */
  function dailyFromHourly(points, minHours) {
    const days = new Map();
    for (const p of points) {
      const d = Math.floor(Date.parse(p.timestamp) / DAY_MS) * DAY_MS;
      const acc = days.get(d) || { t: d, yhat: 0, lo2: 0, hi2: 0, n: 0 };
      acc.yhat += p.yhat;
      acc.lo2 += Math.max(0, p.yhat - p.yhat_lower) ** 2;
      acc.hi2 += Math.max(0, p.yhat_upper - p.yhat) ** 2;
      acc.n += 1;
      days.set(d, acc);
    }
    return Array.from(days.values()).filter((d) => d.n >= (minHours == null ? 12 : minHours)).map((d) => ({
      t: d.t, n: d.n, yhat: Math.max(0, d.yhat), lower: Math.max(0, d.yhat - Math.sqrt(d.lo2)), upper: d.yhat + Math.sqrt(d.hi2),
    }));
  }
  /** The total of daily points with two bands: `independent` (half-widths in quadrature, as above) and
   * `together` (the daily bounds added up: all days off in the same direction); the true band is between. */
  function totalOf(points) {
    const y = sum(points.map((p) => p.yhat));
    const lo = Math.sqrt(sum(points.map((p) => Math.max(0, p.yhat - p.lower) ** 2)));
    const hi = Math.sqrt(sum(points.map((p) => Math.max(0, p.upper - p.yhat) ** 2)));
    return { yhat: y, independent: [Math.max(0, y - lo), y + hi], together: [sum(points.map((p) => p.lower)), sum(points.map((p) => p.upper))] };
  }
  Hub.forecastMath = { forecastPlan, dailyFromHourly, totalOf, DAILY_MIN_DAYS };
  /** 30 days of daily spend from GET /api/v1/forecast (daily steps, or hourly steps combined per UTC day:
   * forecastPlan); null when the hub has no forecast API, {points: null, note} when it has no forecast to give. */
  async function apiForecast() {
    if ((await Hub.findPath('get', /^\/api\/v1\/forecast$/)) === null) return null;
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const past = await Hub.query({ metric: { event_type: 'cost' }, aggregation: { functions: ['sum'], time_bucket: '1d' } },
      { start: new Date(today - (DAILY_MAX_DAYS + 1) * DAY_MS), end: new Date(today) });
    const plan = forecastPlan(past.map((r) => [Date.parse(r.bucket), r.sum]), today);
    const spec = { event_type: 'cost', field: 'value', aggregation: 'sum', step: plan.step, filters: Hub.filters() };
    const params = { query: JSON.stringify(spec), horizon: '30d', level: 95, history: plan.history };
    if (Hub.state.tenant) params.tenant = Hub.state.tenant;
    let ans;
    try {
      ans = await Hub.api('/api/v1/forecast', { params });
    } catch (e) {
      if (e instanceof Hub.ApiError && (e.status === 404 || e.status === 405)) return null;
      throw e;
    }
    const s = (ans.series || [])[0];
    if (!s || !s.points || !s.points.length) return { points: null, note: ans.note || 'no forecast' };
    const points = plan.step === '1d'
      ? s.points.map((p) => ({ t: Date.parse(p.timestamp), n: 24, yhat: Math.max(0, p.yhat), lower: Math.max(0, p.yhat_lower), upper: p.yhat_upper }))
      : dailyFromHourly(s.points, 12);
    return { points: points.slice(0, 30), model: s.model, level: ans.level, plan };
  }
  function spendChart(hist, fc, note) {
    const series = [{ name: 'daily spend', type: 'bar', data: hist, barMaxWidth: 16 }];
    if (fc) {
      series.push(
        { name: 'band lower', type: 'line', stack: 'band', data: fc.map((p) => [p.t, +p.lower.toFixed(4)]), lineStyle: { opacity: 0 }, symbol: 'none', tooltip: { show: false } },
        { name: 'forecast band', type: 'line', stack: 'band', data: fc.map((p) => [p.t, +(p.upper - p.lower).toFixed(4)]), lineStyle: { opacity: 0 }, symbol: 'none', itemStyle: { color: 'rgba(47,111,237,0.35)' }, areaStyle: { color: 'rgba(47,111,237,0.18)' } },
        { name: 'forecast', type: 'line', data: fc.map((p) => [p.t, +p.yhat.toFixed(4)]), symbol: 'none', itemStyle: { color: '#2f6fed' }, lineStyle: { type: 'dashed' } },
      );
      const tot = totalOf(fc);
      note += ` Next ${fc.length} days: ${F.usd(tot.yhat)} expected (${F.usd(tot.independent[0])} – ${F.usd(tot.independent[1])} if the days' errors are independent, ` +
        `up to ${F.usd(tot.together[0])} – ${F.usd(tot.together[1])} if they all go the same way).`;
    }
    Hub.chart('c-spend', { legend: { data: ['daily spend', 'forecast', 'forecast band'] }, xAxis: { type: 'time' }, yAxis: { type: 'value', name: 'USD' }, series },
      (p) => { if (p.seriesName === 'daily spend') Hub.drill({ event_type: 'cost', start: new Date(p.value[0]), end: new Date(p.value[0] + 864e5) }); });
    Hub.explain('c-spend', note);
  }
  P.cost = async function () {
    const w = Hub.window();
    const spendOf = (field) => Hub.query({ metric: { event_type: 'cost' }, aggregation: { functions: ['sum'], group_by: [field] }, sort: [{ field: 'sum', order: 'desc' }], limit: 15 });
    const bars = (id, field, drillKey) => Hub.panel(id, 'cost breakdown', async () => {
      const rows = (await spendOf(field)).reverse();
      Hub.chart(id, {
        legend: { show: false }, tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
        xAxis: { type: 'value', name: 'USD' }, yAxis: { type: 'category', data: rows.map((r) => String(r[field] ?? '(none)')) },
        series: [{ name: 'spend (USD)', type: 'bar', data: rows.map((r) => +r.sum.toFixed(4)) }],
      }, (p) => Hub.drill({ event_type: 'cost', [drillKey]: p.name }));
    });
    await Promise.all([
      Hub.panel('c-spend', 'spend series', async () => {
        const start = new Date(Math.min(w.start.getTime(), w.end.getTime() - 30 * 864e5));
        const rows = await Hub.query({ metric: { event_type: 'cost' }, aggregation: { functions: ['sum'], time_bucket: '1d' } }, { start, end: w.end });
        const hist = rows.map((r) => [Date.parse(r.bucket), +r.sum.toFixed(4)]);
        const projection = () => {
          if (hist.length < 2) return [null, 'Not enough history for a forecast (two days of spend are needed).'];
          const full = hist.length > 3 ? hist.slice(1, -1) : hist; // the first and the current day are partial
          return [linearProjection(full, 30), 'The console\'s projection of daily spend (mean level, linear trend from 14 days of history; 95 % band).'];
        };
        spendChart(hist, null, 'Forecast: loading…');
        Hub.later('c-spend', 'forecasts', async () => {
          const api = hist.length ? await apiForecast() : { points: null, note: 'no spend' };
          let fc;
          let note;
          if (api && api.points) {
            fc = api.points;
            note = `Forecast from the hub's forecast API (${api.model || 'ensemble'}, ${api.level || 95} % band, ` + (api.plan.step === '1d'
              ? `daily steps over ${api.plan.history} of history: the band is the API's own interval for a day's spend).`
              : `hourly steps summed per day; the band adds the hours' half-widths in quadrature, i.e. assumes independent hourly errors, ` +
                `and is too narrow when they are correlated. Daily steps, with the API's own daily band, once there are ${DAILY_MIN_DAYS} days of spend).`);
          } else {
            [fc, note] = projection();
            note = (api ? `The forecast API has no forecast yet (${api.note}). ` : 'Forecast API not available yet. ') + note;
          }
          spendChart(hist, fc, note);
        });
      }),
      bars('c-by-model', 'model', 'model'),
      bars('c-by-project', 'project', 'project'),
      bars('c-by-team', 'team', 'team'),
      Hub.later('c-budget', 'budgets', async () => { // each budget's status runs a spend forecast: after the page
        if ((await Hub.findPath('get', /^\/api\/v1\/budgets$/)) === null) { Hub.unavailable('c-budget', 'budgets', 'no GET /api/v1/budgets'); return; }
        const ans = await Hub.api('/api/v1/budgets', { params: Hub.state.tenant ? { tenant: Hub.state.tenant } : {} });
        const list = Array.isArray(ans) ? ans : pick(ans, ['budgets', 'items', 'data']) || [];
        if (!list.length) { Hub.notice('c-budget', 'No budgets yet', 'Create one with POST /api/v1/budgets (amount, period, team/project/model); it shows here with its spend and forecast.'); return; }
        const rows = list.map((b) => {
          const def = b.budget || b;
          return {
            name: String(pick(def, ['name', 'id']) ?? '?'), budget: Number(pick(def, ['amount', 'limit']) ?? 0),
            actual: Number(pick(b, ['spent_to_date', 'spent', 'actual']) ?? 0), forecast: Number(pick(b, ['forecast_total']) ?? NaN),
            exhaustion: pick(b, ['exhaustion']),
          };
        });
        const series = [{ name: 'budget', type: 'bar', data: rows.map((r) => r.budget), itemStyle: { color: '#9aa3b5' } }, { name: 'spent to date', type: 'bar', data: rows.map((r) => r.actual) }];
        if (rows.some((r) => !isNaN(r.forecast))) series.push({ name: 'forecast for the period', type: 'bar', data: rows.map((r) => (isNaN(r.forecast) ? null : +r.forecast.toFixed(2))), itemStyle: { color: '#e8833a' } });
        Hub.chart('c-budget', { tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } }, xAxis: { type: 'value', name: 'USD' }, yAxis: { type: 'category', data: rows.map((r) => r.name) }, series });
        const soon = rows.filter((r) => r.exhaustion);
        Hub.explain('c-budget', soon.length ? 'Predicted exhaustion: ' + soon.map((r) => `${r.name} on ${F.time(r.exhaustion)}`).join('; ') : '');
      }),
      Hub.panel('t-cost', 'cost table', async () => {
        const rows = await Hub.query({ metric: { event_type: 'cost' }, aggregation: { functions: ['sum', 'count'], group_by: ['team', 'project'] }, sort: [{ field: 'sum', order: 'desc' }], limit: 200 });
        Hub.table('t-cost', [
          { key: 'team', label: 'Team' }, { key: 'project', label: 'Project' }, { key: 'sum', label: 'Spend (USD)', num: true, fmt: (v) => (v == null ? '' : v.toFixed(4)) },
          { key: 'count', label: 'Cost events', num: true, fmt: F.int },
        ], rows, { onRow: (r) => Hub.drill({ event_type: 'cost', team: r.team, project: r.project }) });
      }),
    ]);
  };

  // ================= security =================
  P.security = async function () {
    const w = Hub.window();
    const sec = Hub.ofType('security');
    const pie = (id, field, drillKey) => Hub.panel(id, 'security breakdown', async () => {
      const rows = await Hub.query({ filters: sec, aggregation: { functions: ['count'], group_by: [field] }, sort: [{ field: 'count', order: 'desc' }] });
      Hub.chart(id, {
        tooltip: { trigger: 'item' }, legend: { type: 'scroll', bottom: 0, top: 'auto' },
        series: [{ name: field.replace('payload.', ''), type: 'pie', radius: ['35%', '65%'], data: rows.map((r) => ({ name: String(r[field] ?? '(none)'), value: r.count })) }],
      }, (p) => Hub.drill({ event_type: 'security', [drillKey]: p.name }));
    });
    await Promise.all([
      Hub.panel('c-threats', 'threat series', async () => {
        const rows = await Hub.query({ filters: sec, aggregation: { functions: ['count'], time_bucket: w.bucket, group_by: ['name'] } });
        const groups = Hub.toSeries(rows, 'count', 'name');
        const series = Object.entries(groups).map(([name, data]) => ({ name, type: 'bar', stack: 'threats', data, barMaxWidth: 18 }));
        if (Hub.state.compare) {
          const prev = await Hub.query({ filters: sec, aggregation: { functions: ['count'], time_bucket: w.bucket } }, { prev: true });
          series.push(Hub.prevLine('all findings, previous period', Hub.toSeries(prev, 'count', null, w.span)[''] || []));
        }
        Hub.chart('c-threats', { xAxis: Hub.timeAxis(), yAxis: { type: 'value', name: 'findings' }, series },
          (p) => Hub.drill(Object.assign({ event_type: 'security', name: groups[p.seriesName] ? p.seriesName : undefined }, Hub.bucketWindow(p.value[0]))));
        Hub.explain('c-threats', rows.length ? '' : 'No security findings in this window.');
      }),
      pie('c-levels', 'payload.threat_level', 'payload.threat_level'),
      pie('c-actions', 'payload.action_taken', 'payload.action_taken'),
      Hub.panel('t-intel', 'threat intelligence', async () => {
        const ans = await Hub.api('/api/v1/security/threat-intel', { params: Hub.windowParams({ limit: 100 }) });
        Hub.table('t-intel', [
          { key: 'indicator', label: 'Indicator' }, { key: 'value', label: 'Value' }, { key: 'findings', label: 'Findings', num: true, fmt: F.int },
          { key: 'events', label: 'Events', num: true, fmt: F.int }, { key: 'threat_types', label: 'Threat types', fmt: (v) => (v || []).join(', ') },
          { key: 'modules', label: 'Modules', fmt: (v) => (v || []).join(', ') }, { key: 'last_seen', label: 'Last seen', fmt: F.time },
        ], ans.indicators || []);
      }),
      Hub.panel('t-findings', 'findings', async () => {
        const ans = await Hub.api('/api/v1/events', { params: eventParams({ event_type: 'security', limit: 50 }) });
        Hub.table('t-findings', [
          { key: 'timestamp', label: 'Time', fmt: F.time }, { key: 'payload', label: 'Threat', fmt: (p) => p.threat_type },
          { key: 'payload', label: 'Level', fmt: (p) => p.threat_level }, { key: 'payload', label: 'Action', fmt: (p) => p.action_taken },
          { key: 'payload', label: 'Model', fmt: (p) => p.model }, { key: 'tags', label: 'Team', fmt: (t) => (t || {}).team },
          { key: 'payload', label: 'User', fmt: (p) => p.user_id }, { key: 'payload', label: 'Source IP', fmt: (p) => p.source_ip },
        ], ans.events || [], { onRow: (r) => r.correlation_id && Hub.drill({ correlation_id: r.correlation_id }) });
      }),
    ]);
  };

  // ================= governance =================
  P.governance = async function () {
    const w = Hub.window();
    await Promise.all([
      Hub.panel('c-compliance', 'compliance series', async () => {
        const [gov, pol] = await Promise.all([
          Hub.query({ filters: Hub.ofType('governance'), aggregation: { functions: ['count'], time_bucket: w.bucket, group_by: ['payload.compliant'] } }),
          Hub.query({ filters: Hub.ofType('policy'), aggregation: { functions: ['count'], time_bucket: w.bucket, group_by: ['payload.result'] } }),
        ]);
        const rate = (rows, key, good) => {
          const b = {};
          for (const r of rows) { const t = Date.parse(r.bucket); b[t] = b[t] || [0, 0]; b[t][1] += r.count; if (String(r[key]) === good) b[t][0] += r.count; }
          return Object.entries(b).map(([t, [g, n]]) => [Number(t), +((g / n) * 100).toFixed(2)]).sort((a, c) => a[0] - c[0]);
        };
        Hub.chart('c-compliance', {
          xAxis: Hub.timeAxis(), yAxis: { type: 'value', name: '%', min: (v) => Math.max(0, Math.floor((v.min - 5) / 10) * 10), max: 100 },
          series: [
            { name: 'governance compliant %', type: 'line', data: rate(gov, 'payload.compliant', 'true'), showSymbol: false },
            { name: 'policy pass %', type: 'line', data: rate(pol, 'payload.result', 'pass'), showSymbol: false },
          ],
        }, (p) => Hub.drill(Object.assign({ event_type: p.seriesIndex === 0 ? 'governance' : 'policy' }, Hub.bucketWindow(p.value[0]))));
      }),
      Hub.panel('c-policies', 'policy results', async () => {
        const rows = await Hub.query({ filters: Hub.ofType('policy'), aggregation: { functions: ['count'], group_by: ['name', 'payload.result'] } });
        const policies = Array.from(new Set(rows.map((r) => String(r.name)))).sort();
        const results = Array.from(new Set(rows.map((r) => String(r['payload.result'])))).sort();
        const color = { pass: '#2e9d5b', fail: '#c62828', warn: '#e8833a' };
        Hub.chart('c-policies', {
          tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } }, xAxis: { type: 'value' }, yAxis: { type: 'category', data: policies },
          series: results.map((res) => ({
            name: res, type: 'bar', stack: 'r', itemStyle: color[res] ? { color: color[res] } : undefined,
            data: policies.map((p) => (rows.find((r) => String(r.name) === p && String(r['payload.result']) === res) || {}).count || 0),
          })),
        }, (p) => Hub.drill({ event_type: 'policy', name: p.name, 'payload.result': p.seriesName }));
      }),
      Hub.panel('c-regulations', 'violations', async () => {
        const rows = await Hub.query({ filters: Hub.ofType('governance').concat([{ field: 'payload.compliant', operator: 'eq', value: 'false' }]), aggregation: { functions: ['count'], group_by: ['payload.regulation'] }, sort: [{ field: 'count', order: 'desc' }] });
        Hub.chart('c-regulations', {
          legend: { show: false }, tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
          xAxis: { type: 'category', data: rows.map((r) => String(r['payload.regulation'] ?? '(none)')) }, yAxis: { type: 'value', name: 'violations' },
          series: [{ name: 'violations', type: 'bar', data: rows.map((r) => r.count), itemStyle: { color: '#c62828' } }],
        }, (p) => Hub.drill({ event_type: 'governance', 'payload.regulation': p.name }));
        Hub.explain('c-regulations', rows.length ? '' : 'No violations in this window.');
      }),
      Hub.panel('t-policies', 'compliance report', async () => {
        const ans = await Hub.api('/api/v1/policy/compliance/report', { params: Hub.windowParams() });
        const per = {};
        for (const h of ans.hourly || []) {
          const p = (per[h.policy_id] = per[h.policy_id] || { policy_id: h.policy_id, evaluations: 0, pass: 0, fail: 0, warn: 0 });
          for (const k of ['evaluations', 'pass', 'fail', 'warn']) p[k] += h[k] || 0;
        }
        const rows = Object.values(per).map((p) => Object.assign(p, { rate: p.evaluations ? p.pass / p.evaluations : null })).sort((a, b) => (a.rate ?? 1) - (b.rate ?? 1));
        Hub.table('t-policies', [
          { key: 'policy_id', label: 'Policy' }, { key: 'evaluations', label: 'Evaluations', num: true, fmt: F.int }, { key: 'pass', label: 'Pass', num: true, fmt: F.int },
          { key: 'fail', label: 'Fail', num: true, fmt: F.int }, { key: 'warn', label: 'Warn', num: true, fmt: F.int }, { key: 'rate', label: 'Compliance', num: true, fmt: F.pct },
        ], rows, { onRow: (r) => Hub.drill({ event_type: 'policy', name: r.policy_id }) });
      }),
    ]);
  };

  // ================= anomalies =================
  // api: the analytics service's query alias whose anomalies belong to this series (same unit)
  const SERIES = {
    p95: { label: 'p95 latency (ms)', api: 'latency_p95', q: { metric: Hub.DURATION, aggregation: { functions: ['p95'] } }, key: 'p95', fmt: F.ms, drill: { event_type: 'telemetry' } },
    requests: { label: 'requests / s', zero: true, api: 'requests_rate', perSecond: true, q: { metric: Hub.DURATION, aggregation: { functions: ['count'] } }, key: 'count', fmt: (v) => (v == null ? '–' : v.toFixed(3)), drill: { event_type: 'telemetry' } },
    errors: { label: 'error rate', api: 'error_rate', q: { metric: 'error_rate', aggregation: {} }, key: 'error_rate', fmt: F.pct, drill: { event_type: 'telemetry', status: 'error' } },
    cost: { label: 'cost per hour (USD)', zero: true, api: 'cost_usd_hourly', bucket: '1h', q: { metric: { event_type: 'cost' }, aggregation: { functions: ['sum'] } }, key: 'sum', fmt: F.usd, drill: { event_type: 'cost' } },
    threats: { label: 'security findings', zero: true, q: { filters: Hub.ofType('security'), aggregation: { functions: ['count'] } }, key: 'count', fmt: F.int, drill: { event_type: 'security' } },
  };
  /** Counts and sums have no row for an empty bucket: put a 0 there (the window's buckets, UTC-aligned). */
  function zeroFill(points, bucket) {
    const w = Hub.window();
    const ms = Hub.bucketMs[bucket];
    const have = new Map(points.map((p) => [p[0], p[1]]));
    const out = [];
    for (let t = Math.floor(w.start / ms) * ms; t < w.end; t += ms) out.push([t, have.get(t) ?? 0]);
    return out;
  }
  const SEVERITY_STYLE = { low: ['#f0a35e', 7], medium: ['#e8833a', 10], high: ['#c62828', 13], critical: ['#8e0000', 15] };
  function median(a) { const s = a.slice().sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; }
  /** Robust z-scores (median / MAD); |z| > 3.5 is anomalous. The fallback when the hub has no anomaly API. */
  function madAnomalies(points, def) {
    const vals = points.map((p) => p[1]).filter((v) => v != null);
    if (vals.length < 8) return [];
    const med = median(vals);
    // 1.4826 × MAD estimates σ; when more than half the points are equal (MAD = 0) use the mean deviation
    const mad = median(vals.map((v) => Math.abs(v - med))) * 1.4826 || (1.2533 * sum(vals.map((v) => Math.abs(v - med)))) / vals.length;
    if (!mad) return [];
    return points.filter((p) => p[1] != null && Math.abs(p[1] - med) / mad > 3.5).map((p) => {
      const z = (p[1] - med) / mad;
      return { t: p[0], value: p[1], score: Math.abs(z) / 3.5, severity: Math.abs(z) > 7 ? 'high' : 'medium', series: 'all', explanation: `${def.label} ${def.fmt(p[1])} is ${Math.abs(z).toFixed(1)} robust σ ${z > 0 ? 'above' : 'below'} the window's median ${def.fmt(med)}` };
    });
  }
  /** Anomalies of the series' query alias from GET /api/v1/anomalies; null without that API. */
  async function apiAnomalies(def) {
    if (!def.api || (await Hub.findPath('get', /^\/api\/v1\/anomalies$/)) === null) return null;
    let ans;
    try {
      ans = await Hub.api('/api/v1/anomalies', { params: Hub.windowParams({ query: def.api, limit: 2000 }) });
    } catch (e) {
      if (e instanceof Hub.ApiError && (e.status === 404 || e.status === 405)) return null;
      throw e;
    }
    const want = { gen_ai_request_model: Hub.state.model, environment: Hub.state.environment, team: Hub.state.team };
    return (ans.anomalies || []).filter((a) => Object.entries(want).every(([k, v]) => !v || !a.labels || a.labels[k] === undefined || a.labels[k] === v)).map((a) => ({
      id: a.id, t: Date.parse(a.timestamp), value: a.value, score: a.anomaly_score, severity: a.severity,
      series: Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`).join(' '), explanation: a.explanation || '',
    })).filter((a) => !isNaN(a.t));
  }
  /** "Not an anomaly": POST /api/v1/anomalies/{id}/feedback; the hub learns and re-scores the series. */
  function notAnomaly(r) {
    const b = el('button', 'Not an anomaly');
    b.type = 'button';
    b.dataset.action = 'false-positive';
    b.dataset.anomaly = r.id;
    b.title = 'Teach the hub that this was not an anomaly: alerts like it (or smaller) on this series stop';
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await Hub.api(`/api/v1/anomalies/${encodeURIComponent(r.id)}/feedback`, { method: 'POST', body: { label: 'false_positive' } });
        Hub.explain('t-anomalies', 'Marked as not an anomaly; the hub re-scored the series.');
        await P.anomalies();
      } catch (e) {
        b.disabled = false;
        Hub.explain('t-anomalies', 'Could not send the feedback: ' + e.message);
      }
    });
    return b;
  }
  P.anomalies = async function () {
    const sel = document.getElementById('a-series');
    const name = SERIES[Hub.params.get('series')] ? Hub.params.get('series') : 'p95';
    sel.value = name;
    if (!sel.dataset.bound) {
      sel.dataset.bound = '1';
      sel.addEventListener('change', () => { const p = new URLSearchParams(location.search); p.set('series', sel.value); location.search = p.toString(); });
    }
    const def = SERIES[name];
    const w = Hub.window();
    const bucket = def.bucket || (w.span <= 2 * 864e5 ? '15m' : w.span <= 10 * 864e5 ? '1h' : '6h');
    let found = [];
    await Hub.panel('c-anomaly', 'the series', async () => {
      const q = JSON.parse(JSON.stringify(def.q));
      q.aggregation.time_bucket = bucket;
      const rows = await Hub.query(q);
      const per = def.perSecond ? 1000 / Hub.bucketMs[bucket] : 1;
      let points = rows.map((r) => [Date.parse(r.bucket), r[def.key] == null ? null : r[def.key] * per]);
      if (def.zero) points = zeroFill(points, bucket);
      const api = await apiAnomalies(def);
      let note;
      if (api) {
        found = api;
        note = `Anomalies found by the hub's anomaly models on "${def.api}" (per series; the marker sits on the aggregate at that time).`;
      } else {
        found = madAnomalies(points, def);
        note = (def.api ? 'Anomaly API not available yet: ' : 'The hub has no anomaly model for this series: ') +
          'points are marked by the console\'s robust z-score check (|x − median| > 3.5 × 1.4826 × MAD).';
      }
      const bms = Hub.bucketMs[bucket];
      const onLine = (t) => { const p = points.find((x) => x[0] <= t && t < x[0] + bms) || points.reduce((a, b) => (Math.abs(b[0] - t) < Math.abs(a[0] - t) ? b : a), points[0] || [t, null]); return p[1]; };
      Hub.chart('c-anomaly', {
        xAxis: Hub.timeAxis(), yAxis: { type: 'value', name: def.label, nameTextStyle: { align: 'left' } },
        series: [
          { name: def.label, type: 'line', data: points, showSymbol: false },
          {
            name: 'anomalies', type: 'scatter', z: 5, itemStyle: { color: '#c62828' },
            data: found.map((a) => { const st = SEVERITY_STYLE[a.severity] || SEVERITY_STYLE.high; return { value: [a.t, onLine(a.t) ?? a.value], symbolSize: st[1], itemStyle: { color: st[0] } }; }),
          },
        ],
      }, (p) => Hub.drill(Object.assign({}, def.drill, Hub.bucketWindow(p.value[0], bucket))));
      Hub.explain('c-anomaly', `${note} ${found.length} anomalous point(s) in this window.`);
    });
    await Hub.panel('t-anomalies', 'anomalies', async () => {
      Hub.table('t-anomalies', [
        { key: 't', label: 'Time', fmt: F.time }, { key: 'series', label: 'Series' }, { key: 'value', label: 'Value', num: true, fmt: def.fmt },
        { key: 'score', label: 'Score', num: true, fmt: (v) => (v == null || isNaN(v) ? '' : v.toFixed(2)) }, { key: 'severity', label: 'Severity' },
        { key: 'explanation', label: 'Why' },
        { key: 't', label: 'Events', node: (r) => link('raw events', Hub.drillUrl(Object.assign({}, def.drill, Hub.bucketWindow(r.t - (r.t % Hub.bucketMs[bucket]), bucket)))), csv: () => '' },
        { key: 'id', label: 'Feedback', node: (r) => (r.id ? notAnomaly(r) : null), csv: () => '' },
      ], found.slice(0, 500), { empty: 'No anomalous points in this window.' });
    });
  };

  // ================= correlations and incidents =================
  function graphOption(nodes, edges, opts) {
    return {
      tooltip: { trigger: 'item' }, legend: { show: false },
      series: [{
        type: 'graph', layout: opts.layout || 'circular', roam: true, draggable: true, edgeSymbol: ['none', 'arrow'], edgeSymbolSize: 8,
        label: { show: true, position: 'right', fontSize: 11 }, lineStyle: { curveness: 0.15, opacity: 0.7 },
        data: nodes, links: edges, force: { repulsion: 220, edgeLength: 90 },
      }],
    };
  }
  // Up to RCA_NODES events are drawn one node each; beyond that, the events of one module and signal share a
  // node (the root cause keeps its own), so an incident of hundreds of findings stays readable.
  const RCA_NODES = 30;
  function rcaGraph(g, root) {
    const order = g.nodes.slice().sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
    const collapsed = order.length > RCA_NODES;
    const groups = [];
    const groupOf = new Map();
    const byKey = new Map();
    for (const n of order) {
      const key = n.id === root || !collapsed ? `id:${n.id}` : `${n.component || n.module}|${n.signal || n.id}`;
      let grp = byKey.get(key);
      if (!grp) {
        grp = { id: key, members: [], module: n.component || n.module, signal: n.signal || n.id, score: 0, abnormal: false, root: n.id === root };
        byKey.set(key, grp);
        groups.push(grp);
      }
      grp.members.push(n);
      grp.score = Math.max(grp.score, n.score || 0);
      grp.abnormal = grp.abnormal || !!n.abnormal;
      groupOf.set(n.id, grp);
    }
    const modules = Array.from(new Set(groups.map((x) => x.module)));
    const nodes = groups.map((x, i) => ({
      id: x.id, name: x.members.length > 1 ? `${x.signal} ×${x.members.length}` : x.signal, x: i * 120, y: modules.indexOf(x.module) * 70,
      symbolSize: 14 + 26 * x.score, itemStyle: { color: x.root ? '#c62828' : x.abnormal ? '#e8833a' : '#2f6fed' }, value: x.score,
      label: { position: 'bottom' },
    }));
    const links = new Map();
    for (const e of g.edges) {
      const a = groupOf.get(e.source);
      const b = groupOf.get(e.target);
      if (!a || !b || a === b) continue;
      const k = `${a.id}>${b.id}`;
      const w = Math.max((links.get(k) || {}).value || 0, e.weight || 0);
      links.set(k, { source: a.id, target: b.id, value: w, lineStyle: { width: 1 + w } });
    }
    return { nodes, edges: Array.from(links.values()), collapsed };
  }
  Hub.rcaGraph = rcaGraph; // for the browser tests
  async function showRca(inc) {
    await Hub.panel('c-rca', 'root-cause analysis', async () => {
      const ans = await Hub.api(`/api/v1/incidents/${encodeURIComponent(inc.id)}/rca`, { params: Hub.state.tenant ? { tenant: Hub.state.tenant } : {} });
      const hyps = ans.hypotheses || [];
      const g = (hyps[0] && hyps[0].graph) || { nodes: [], edges: [] };
      const root = hyps[0] && hyps[0].root_event_id;
      const { nodes, edges, collapsed } = rcaGraph(g, root);
      Hub.chart('c-rca', graphOption(nodes, edges, { layout: 'none' }));
      Hub.explain('c-rca', `Incident ${inc.id}: ${inc.title || ''}. Red = most likely root cause; left to right = time.` +
        (collapsed ? ` The ${g.nodes.length} events are drawn as ${nodes.length} nodes: events of the same module and signal share one (×N).` : ''));
      Hub.table('t-causes', [
        { key: 'rank', label: '#', num: true }, { key: 'cause', label: 'Cause' }, { key: 'confidence', label: 'Confidence', num: true, fmt: F.pct },
        { key: 'score', label: 'Score', num: true, fmt: (v) => (v == null ? '' : v.toFixed(3)) }, { key: 'evidence', label: 'Evidence', num: true, fmt: (v) => String((v || []).length) },
      ], hyps.map((h, i) => Object.assign({ rank: i + 1 }, h)), {
        empty: 'No root-cause hypothesis for this incident.',
        onRow: () => Hub.drill({ start: new Date(Date.parse(inc.start) - 60000), end: new Date(Date.parse(inc.end) + 60000) }),
      });
    });
  }
  P.correlations = async function () {
    await Promise.all([
      Hub.panel('t-incidents', 'incidents', async () => {
        const ans = await Hub.api('/api/v1/incidents', { params: Hub.windowParams({ limit: 200 }) });
        const list = ans.incidents || [];
        Hub.table('t-incidents', [
          { key: 'start', label: 'Start', fmt: F.time }, { key: 'title', label: 'Incident' }, { key: 'types', label: 'Types', fmt: (v) => (v || []).join(', ') },
          { key: 'confidence', label: 'Confidence', num: true, fmt: F.pct }, { key: 'event_count', label: 'Events', num: true, fmt: F.int },
        ], list, {
          empty: 'No incident in this window.',
          onRow: (r, tr) => { for (const x of tr.parentNode.querySelectorAll('tr.selected')) x.classList.remove('selected'); tr.classList.add('selected'); showRca(r); },
        });
        if (list.length) {
          const first = document.querySelector('#t-incidents tbody tr');
          if (first) first.classList.add('selected');
          await showRca(list[0]);
        } else {
          Hub.explain('c-rca', 'No incident selected.');
          Hub.table('t-causes', [{ key: 'cause', label: 'Cause' }], [], { empty: 'No incident in this window.' });
        }
      }),
      Hub.panel('c-corr-graph', 'correlations', async () => {
        const ans = await Hub.api('/api/v1/correlations', { params: Hub.windowParams({ limit: 1000 }) });
        const list = ans.correlations || [];
        const weight = {};
        const seen = {};
        for (const c of list) {
          const ms = c.modules || [];
          for (const m of ms) seen[m] = (seen[m] || 0) + 1;
          for (let i = 0; i < ms.length; i++) for (let j = i + 1; j < ms.length; j++) { const k = ms[i] + '|' + ms[j]; weight[k] = (weight[k] || 0) + 1; }
        }
        const nodes = Object.entries(seen).map(([m, n]) => ({ id: m, name: m, value: n, symbolSize: 16 + Math.min(30, n * 3) }));
        const edges = Object.entries(weight).map(([k, n]) => { const [s, t] = k.split('|'); return { source: s, target: t, value: n, lineStyle: { width: Math.min(8, 1 + n) } }; });
        const opt = graphOption(nodes, edges, { layout: 'circular' });
        opt.series[0].edgeSymbol = ['none', 'none'];
        Hub.chart('c-corr-graph', opt);
        Hub.explain('c-corr-graph', list.length ? `${list.length} correlation(s); an edge joins modules that appear in the same correlation.` : 'No correlation in this window.');
        Hub.table('t-correlations', [
          { key: 'start', label: 'Start', fmt: F.time }, { key: 'type', label: 'Type' }, { key: 'confidence', label: 'Confidence', num: true, fmt: F.pct },
          { key: 'modules', label: 'Modules', fmt: (v) => (v || []).join(', ') }, { key: 'explanation', label: 'Explanation' },
        ], list, {
          empty: 'No correlation in this window.',
          onRow: (r) => Hub.drill(r.dimensions && r.dimensions.correlation_id ? { correlation_id: r.dimensions.correlation_id } : { start: new Date(Date.parse(r.start) - 60000), end: new Date(Date.parse(r.end) + 60000) }),
        });
      }),
      Hub.panel('c-deps', 'dependencies', async () => {
        const ans = await Hub.api('/api/v1/dependencies', { params: Hub.windowParams() });
        const nodes = (ans.nodes || []).map((n) => ({ id: n.id, name: n.id, symbolSize: 22 }));
        const edges = (ans.edges || []).map((e) => ({ source: e.source, target: e.target, value: e.weight }));
        Hub.chart('c-deps', graphOption(nodes, edges, { layout: 'circular' }));
        Hub.explain('c-deps', nodes.length ? '' : 'No dependency seen in this window.');
      }),
    ]);
  };

  // ================= alerts =================
  const alertId = (a) => pick(a, ['id', 'alert_id', 'fingerprint']);
  const alertState = (a) => String(pick(a, ['state', 'status']) ?? 'firing').toLowerCase();
  async function alertAction(a, verb) {
    const id = alertId(a);
    const re = verb === 'ack' ? /^\/api\/v1\/alerts\/\{[^}]+\}\/(ack|acknowledge)$/ : /^\/api\/v1\/alerts\/\{[^}]+\}\/resolve$/;
    for (const m of ['post', 'put', 'patch']) {
      const path = await Hub.findPath(m, re);
      if (path) return Hub.api(Hub.fill(path, { id }), { method: m.toUpperCase(), body: {} });
    }
    const fallback = `/api/v1/alerts/${encodeURIComponent(id)}/${verb === 'ack' ? 'acknowledge' : 'resolve'}`;
    return Hub.api(fallback, { method: 'POST', body: {} });
  }
  // an inhibited warning (docs/alerting.md, Inhibition) names its critical by id: "inhibited by <that alert>"
  const INHIBITED_MODES = { any: 'any', true: 'true' };
  async function inhibitors(list) {
    const byId = new Map(list.map((a) => [String(alertId(a)), a]));
    const missing = [...new Set(list.filter((a) => a.inhibited && a.inhibited_by_id != null).map((a) => String(a.inhibited_by_id)))]
      .filter((id) => !byId.has(id)).slice(0, 20);
    await Promise.all(missing.map(async (id) => {
      try {
        const ans = await Hub.api(`/api/v1/alerts/${encodeURIComponent(id)}`);
        const a = pick(ans || {}, ['alert']) || ans;
        if (a && typeof a === 'object') byId.set(id, Object.assign({ _elsewhere: true }, a));
      } catch (e) { /* not readable (resolved and gone, another tenant): the hint names its fingerprint */ }
    }));
    return byId;
  }
  const alertName = (a) => String(pick(a, ['name', 'title', 'alertname', 'rule']) ?? alertId(a));
  function inhibitedBy(a, byId) {
    if (!a.inhibited) return null;
    const src = a.inhibited_by_id != null ? byId.get(String(a.inhibited_by_id)) : undefined;
    const what = src ? `${alertName(src)} (${pick(src, ['severity', 'level']) ?? 'critical'}, ${alertState(src)})` : String(a.inhibited_by ?? a.inhibited_by_id ?? 'a critical alert');
    return { text: 'inhibited by ' + what, src, title: a.inhibited_by ? 'fingerprint ' + a.inhibited_by : '' };
  }
  P.alerts = async function () {
    const sel = document.getElementById('al-state');
    const inh = document.getElementById('al-inhibited');
    const countEl = document.getElementById('al-inhibited-count');
    sel.value = Hub.params.get('state') || '';
    inh.value = INHIBITED_MODES[Hub.params.get('inhibited')] || '';
    if (!sel.dataset.bound) {
      sel.dataset.bound = '1';
      const onChange = (s, key) => () => { const p = new URLSearchParams(location.search); if (s.value) p.set(key, s.value); else p.delete(key); location.search = p.toString(); };
      sel.addEventListener('change', onChange(sel, 'state'));
      inh.addEventListener('change', onChange(inh, 'inhibited'));
    }
    await Hub.panel('t-alerts', 'the alerts API', async () => {
      const path = await Hub.findPath('get', /^\/api\/v1\/alerts$/);
      if (path === null) { Hub.unavailable('t-alerts', 'alerts', 'no GET /api/v1/alerts'); return; }
      const params = Hub.state.tenant ? { tenant: Hub.state.tenant } : {};
      if (sel.value) params.state = sel.value;
      if (inh.value) params.inhibited = inh.value;
      const ans = await Hub.api('/api/v1/alerts', { params });
      let list = Array.isArray(ans) ? ans : pick(ans, ['alerts', 'items', 'data']) || [];
      if (sel.value) list = list.filter((a) => alertState(a) === sel.value);
      if (inh.value === 'true') list = list.filter((a) => a.inhibited);
      const n = ans && typeof ans.inhibited_count === 'number' ? ans.inhibited_count : null;
      countEl.hidden = n === null;
      countEl.textContent = n === null ? '' : `Inhibited alerts: ${F.int(n)}${n && !inh.value ? ' (hidden)' : ''}`;
      const byId = await inhibitors(list);
      const button = (a, verb, label) => {
        const b = el('button', label);
        b.type = 'button';
        b.dataset.action = verb;
        b.dataset.alert = String(alertId(a));
        b.addEventListener('click', async () => {
          b.disabled = true;
          try { await alertAction(a, verb); await P.alerts(); } catch (e) { b.disabled = false; Hub.explain('t-alerts', 'Could not ' + label.toLowerCase() + ': ' + e.message); }
        });
        return b;
      };
      Hub.table('t-alerts', [
        { key: 'state', label: 'State', node: (a) => el('span', alertState(a), 'state state-' + alertState(a)), csv: alertState },
        { key: 'severity', label: 'Severity', fmt: (v, a) => String(pick(a, ['severity', 'level']) ?? '') },
        {
          key: 'name', label: 'Alert',
          node: (a) => {
            const span = el('span', alertName(a));
            const by = inhibitedBy(a, byId);
            if (by) {
              const hint = el('span', null, 'inhibited-by');
              hint.dataset.inhibitedBy = String(a.inhibited_by_id ?? '');
              if (by.title) hint.title = by.title;
              // a link to the critical's row when the table shows it
              if (by.src && !by.src._elsewhere) hint.append(link(by.text, '#alert-' + encodeURIComponent(String(alertId(by.src)))));
              else hint.textContent = by.text;
              span.append(hint);
            }
            return span;
          },
          csv: (a) => { const by = inhibitedBy(a, byId); return alertName(a) + (by ? ` (${by.text})` : ''); },
        },
        { key: 'summary', label: 'Details', fmt: (v, a) => String(pick(a.annotations || {}, ['summary', 'description']) ?? pick(a, ['summary', 'description', 'message']) ?? '') },
        { key: 'labels', label: 'Labels', fmt: (v) => Object.entries(v || {}).filter(([k]) => k !== 'alertname' && k !== 'severity').map(([k, x]) => `${k}=${x}`).join(' ') },
        { key: 'started_at', label: 'Since', fmt: (v, a) => F.time(pick(a, ['started_at', 'starts_at', 'startsAt', 'created_at', 'timestamp'])) },
        {
          key: 'actions', label: 'Actions', csv: () => '',
          node: (a) => {
            const span = el('span');
            const st = alertState(a);
            if (st !== 'acknowledged' && st !== 'resolved') span.append(button(a, 'ack', 'Acknowledge'), ' ');
            if (st !== 'resolved') span.append(button(a, 'resolve', 'Resolve'));
            return span;
          },
        },
      ], list, { empty: 'No alerts.' });
      if (!list.length) return;
      document.querySelectorAll('#t-alerts tbody tr').forEach((tr, i) => {
        const a = list[i];
        tr.dataset.alert = String(alertId(a));
        tr.id = 'alert-' + tr.dataset.alert;  // the target of an "inhibited by" link
        if (a.inhibited) tr.classList.add('inhibited');
      });
    });
  };

  // ================= raw events (drill-down target) =================
  const CARRIED = ['range', 'start', 'end', 'compare', 'tenant', 'environment', 'model', 'team'];
  function extras() {
    const out = {};
    for (const [k, v] of Hub.params) if (!CARRIED.includes(k) && k !== 'cursor') out[k] = v;
    return out;
  }
  function eventParams(more) {
    const p = Hub.windowParams();
    for (const k of ['environment', 'model', 'team']) if (Hub.state[k]) p[k] = Hub.state[k];
    return Object.assign(p, more || {});
  }
  const cursors = [null];
  let pageNo = 0;
  P.events = async function (opts) {
    if (opts && opts.refresh) return; // paging by cursor: no auto refresh
    const bar = document.getElementById('ev-extra');
    bar.replaceChildren();
    for (const [k, v] of Object.entries(extras())) {
      const p = new URLSearchParams(location.search);
      p.delete(k);
      const chip = el('span', `${k} = ${v} `, 'chip');
      chip.appendChild(link('×', '?' + p.toString()));
      bar.appendChild(chip);
    }
    const prev = document.getElementById('ev-prev');
    const next = document.getElementById('ev-next');
    if (!next.dataset.bound) {
      next.dataset.bound = '1';
      next.addEventListener('click', () => { pageNo += 1; loadEvents(); });
      prev.addEventListener('click', () => { pageNo = Math.max(0, pageNo - 1); loadEvents(); });
    }
    await loadEvents();
  };
  P.events.refresh = false;
  async function loadEvents() {
    await Hub.panel('t-events', 'events', async () => {
      const ans = await Hub.api('/api/v1/events', { params: eventParams(Object.assign({ limit: 50, cursor: cursors[pageNo] || undefined }, extras())) });
      cursors[pageNo + 1] = ans.next_cursor || null;
      const json = (v) => (v == null ? '' : JSON.stringify(v));
      Hub.table('t-events', [
        { key: 'timestamp', label: 'Time', fmt: F.time }, { key: 'event_type', label: 'Type' }, { key: 'source_module', label: 'Source' },
        { key: 'severity', label: 'Severity' }, { key: 'environment', label: 'Env' }, { key: 'payload', label: 'Model', fmt: (p) => (p && p.model) || '' },
        { key: 'tags', label: 'Team', fmt: (t) => (t && t.team) || '' }, { key: 'correlation_id', label: 'Correlation' },
        { key: 'tags', label: 'Tags', fmt: json, cls: 'json' }, { key: 'payload', label: 'Payload', fmt: json, cls: 'json' },
        { key: 'event_id', label: 'Event id' },
      ], ans.events || [], {
        empty: 'No events match these filters in this window.',
        onRow: (r) => { if (r.correlation_id) location.href = Hub.drillUrl({ correlation_id: r.correlation_id }); },
      });
      document.getElementById('ev-prev').disabled = pageNo === 0;
      document.getElementById('ev-next').disabled = !ans.next_cursor;
      document.getElementById('ev-page').textContent = `page ${pageNo + 1} · ${(ans.events || []).length} event(s)`;
    });
  }
})();
