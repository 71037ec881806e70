/** The dashboard's one page: its script (dist/dashboard/app.js, built from src/dashboard/ui/) draws every view. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mrp2p</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f8f9fb; --ok: #12b76a; --fail: #f04438; --run: #2e90fa; --warn: #f79009; --gray: #98a2b3; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 24px; align-items: center; padding: 10px 20px; background: #101828; color: #fff; }
  header a { color: #d0d5dd; text-decoration: none; } header a.on { color: #fff; font-weight: 600; }
  header .live { margin-left: auto; font-size: 12px; color: #98a2b3; }
  main { padding: 16px 20px; }
  table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { font-size: 12px; color: var(--muted); font-weight: 600; }
  code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
  .state-succeeded { color: var(--ok); } .state-failed { color: var(--fail); } .state-running { color: var(--run); } .state-cancelled { color: var(--warn); }
  .bar { display: inline-block; width: 120px; height: 8px; background: var(--line); border-radius: 4px; overflow: hidden; vertical-align: middle; }
  .bar > span { display: block; height: 100%; background: var(--run); }
  .cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 160px; }
  .card b { display: block; font-size: 18px; }
  .muted { color: var(--muted); }
  .filters { margin: 8px 0 12px; display: flex; gap: 8px; }
  button { font: inherit; padding: 4px 12px; border-radius: 4px; border: 1px solid var(--fail); background: #fff; color: var(--fail); cursor: pointer; }
  svg text { font: 11px ui-monospace, monospace; fill: var(--muted); }
  .legend span { display: inline-block; margin-right: 12px; font-size: 12px; }
  .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; vertical-align: -1px; }
  pre { background: #fff; border: 1px solid var(--line); padding: 10px; overflow: auto; }
</style>
</head>
<body>
<header><strong>mrp2p</strong><a href="#/jobs" data-nav="jobs">Jobs</a><a href="#/mesh" data-nav="mesh">Mesh</a><span class="live" id="live">connecting…</span></header>
<main id="view"></main>
<script type="module" src="app.js"></script>
</body>
</html>
`
