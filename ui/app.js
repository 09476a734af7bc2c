// Weir's web UI: a single page over the job manager's REST API (docs/rest-api.md), with hash
// routes. Plain JavaScript, no build step; d3 v3 (the job graph) and Chart.js 3 (charts) come
// from Debian's libjs-d3 and libjs-chart.js, served by the job manager under lib/.
(function () {
  'use strict';

  var REFRESH_MS = 2000;
  var view = document.getElementById('view');
  var banner = document.getElementById('error-banner');
  var statusLine = document.getElementById('status-line');
  var current = null;      // the mounted view: {update: fn, destroy: fn}
  var timer = null;
  var busy = false;        // a refresh is in flight
  // Records/s per task seen by this page (a fallback when the job manager keeps no history).
  var localHistory = {};   // job id -> [{time, in: {task: r}, out: {task: r}}]

  // ------------------------------------------------------------------ helpers
  // A secure cluster's REST API wants a bearer token (docs/security.md): asked once when a
  // call is refused, kept for this browser tab only.
  function headers(extra) {
    var h = extra || {};
    var token = window.sessionStorage.getItem('weir-token');
    if (token) h['Authorization'] = 'Bearer ' + token;
    return h;
  }

  function askToken() {
    var t = window.prompt('This cluster needs its bearer token (security.token_file):');
    if (t) window.sessionStorage.setItem('weir-token', t.trim());
    return !!t;
  }

  function api(path, retried) {
    var sent = window.sessionStorage.getItem('weir-token');
    return fetch(path, {headers: headers({'Accept': 'application/json'})}).then(function (r) {
      if (r.status === 401 && !retried) {
        // Calls refused before another one got the token retry with it without asking again.
        if (window.sessionStorage.getItem('weir-token') !== sent || askToken()) return api(path, true);
      }
      return r.json().then(function (body) {
        if (!r.ok) {
          var msg = body && body.errors ? body.errors.join('; ') : r.statusText;
          throw new Error(path + ': ' + msg);
        }
        return body;
      });
    });
  }

  function post(path, body, method) {
    return fetch(path, {method: method || 'POST', body: body ? JSON.stringify(body) : '',
                        headers: headers({'Content-Type': 'application/json'})})
      .then(function (r) { return r.json(); });
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    attrs = attrs || {};
    Object.keys(attrs).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'className') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }

  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

  function fmtNum(n) {
    if (n === null || n === undefined || isNaN(n)) return '-';
    if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US');
    return (Math.round(n * 10) / 10).toLocaleString('en-US');
  }
  function fmtBytes(b) {
    if (!b) return '0 B';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (Math.round(b * 10) / 10) + ' ' + u[i];
  }
  function fmtTime(ms) {
    if (!ms || ms < 0) return '-';
    var d = new Date(ms);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
  }
  function fmtClock(ms) { return new Date(ms).toISOString().substr(11, 8); }
  function fmtDuration(ms) {
    if (ms === null || ms === undefined || ms < 0) return '-';
    if (ms < 1000) return ms + ' ms';
    var s = Math.floor(ms / 1000);
    if (s < 60) return (ms / 1000).toFixed(1) + ' s';
    var m = Math.floor(s / 60), h = Math.floor(m / 60);
    if (h > 0) return h + 'h ' + (m % 60) + 'm';
    return m + 'm ' + (s % 60) + 's';
  }
  function pct(r) { return Math.round((r || 0) * 100) + '%'; }
  function stateBadge(s) { return el('span', {className: 'state state-' + s, text: s}); }

  function table(id, headers, rows, emptyText) {
    var t = el('table', id ? {id: id} : {});
    var thead = el('thead', {}, [el('tr', {}, headers.map(function (h) {
      return el('th', {className: h.num ? 'num' : '', text: h.label || h});
    }))]);
    var tbody = el('tbody');
    if (rows.length === 0) {
      tbody.appendChild(el('tr', {}, [el('td', {className: 'empty', colspan: String(headers.length),
                                                 text: emptyText || 'none'})]));
    }
    rows.forEach(function (cells) {
      tbody.appendChild(el('tr', {}, cells.map(function (c, i) {
        var td = el('td', {className: headers[i].num ? 'num' : ''});
        if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined ? '' : String(c);
        return td;
      })));
    });
    t.appendChild(thead);
    t.appendChild(tbody);
    return t;
  }

  function replace(container, child) { clear(container); container.appendChild(child); }

  function showError(err) {
    if (err) {
      banner.textContent = String(err.message || err);
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  function lineChart(canvas, yAxes) {
    var scales = {x: {ticks: {maxTicksLimit: 8}}};
    yAxes.forEach(function (a, i) {
      scales[a.id] = {type: 'linear', position: i === 0 ? 'left' : 'right', beginAtZero: true,
                      title: {display: true, text: a.title}, grid: {drawOnChartArea: i === 0}};
    });
    return new Chart(canvas, {
      type: 'line',
      data: {labels: [], datasets: []},
      options: {animation: false, responsive: true, maintainAspectRatio: false,
                interaction: {mode: 'index', intersect: false}, scales: scales,
                elements: {point: {radius: 0}}, plugins: {legend: {position: 'bottom'}}}
    });
  }

  var PALETTE = ['#2680c2', '#e12d39', '#27ab83', '#f0b429', '#8662c7', '#3ebd93', '#d64545',
                 '#486581', '#cb6e17', '#0b69a3'];

  // ------------------------------------------------------------------ views
  function overviewView() {
    var cards = el('div', {className: 'cards', id: 'overview-cards'});
    var running = el('div');
    var finished = el('div');
    var tms = el('div');
    view.appendChild(el('h1', {text: 'Overview'}));
    view.appendChild(cards);
    view.appendChild(el('h2', {text: 'Running jobs'}));
    view.appendChild(running);
    view.appendChild(el('h2', {text: 'Finished jobs'}));
    view.appendChild(finished);
    view.appendChild(el('h2', {text: 'Task managers'}));
    view.appendChild(tms);

    function jobRows(jobs) {
      return jobs.map(function (j) {
        return [el('a', {className: 'job-link', href: '#/jobs/' + encodeURIComponent(j.jid), text: j.name || j.jid}),
                j.jid, stateBadge(j.state), fmtTime(j['start-time']), fmtDuration(j.duration),
                j.tasks ? String(j.tasks.RUNNING || 0) : '-', String(j.restarts || 0)];
      });
    }
    var jobHeaders = ['Name', 'Job id', 'State', 'Started', 'Duration', {label: 'Running subtasks', num: true},
                      {label: 'Restarts', num: true}];

    return {
      update: function () {
        return Promise.all([api('overview'), api('jobs/overview'), api('taskmanagers')]).then(function (r) {
          var o = r[0], jobs = r[1].jobs || [], list = r[2].taskmanagers || [];
          clear(cards);
          [['Task managers', o.taskmanagers], ['Slots total', o['slots-total']],
           ['Slots available', o['slots-available']], ['Running jobs', o['jobs-running']],
           ['Finished', o['jobs-finished']], ['Cancelled', o['jobs-cancelled']],
           ['Failed', o['jobs-failed']]].forEach(function (c) {
            cards.appendChild(el('div', {className: 'card'}, [el('div', {className: 'value', text: String(c[1])}),
                                                              el('div', {className: 'label', text: c[0]})]));
          });
          var terminal = {FINISHED: 1, CANCELED: 1, FAILED: 1};
          replace(running, table('running-jobs', jobHeaders,
                                 jobRows(jobs.filter(function (j) { return !terminal[j.state]; })),
                                 'no running jobs'));
          replace(finished, table('finished-jobs', jobHeaders,
                                  jobRows(jobs.filter(function (j) { return terminal[j.state]; })),
                                  'no finished jobs'));
          replace(tms, tmTable(list));
        });
      }
    };
  }

  function tmTable(list) {
    return table('taskmanager-table',
                 ['Id', 'RPC address', 'Data address', {label: 'Slots', num: true},
                  {label: 'Free slots', num: true}, 'State', 'Last heartbeat', 'Registered', 'Metrics'],
                 list.map(function (t) {
                   var metrics = t.metricsAddress
                     ? el('a', {href: 'http://' + t.metricsAddress + '/metrics', text: t.metricsAddress})
                     : '-';
                   return [t.id, t.path, t.dataAddress, String(t.slotsNumber), String(t.freeSlots), t.state,
                           fmtDuration(t.timeSinceLastHeartbeat) + ' ago', fmtTime(t.registeredTime), metrics];
                 }), 'no task managers registered');
  }

  function taskManagersView() {
    var box = el('div');
    view.appendChild(el('h1', {text: 'Task managers'}));
    view.appendChild(box);
    return {
      update: function () {
        return api('taskmanagers').then(function (r) { replace(box, tmTable(r.taskmanagers || [])); });
      }
    };
  }

  // The job page's frame: title, state, actions and the tabs.
  function jobHeader(jobId, tab) {
    var title = el('h1', {id: 'job-title', text: 'Job ' + jobId});
    var state = el('span', {id: 'job-state'});
    var info = el('div', {id: 'job-info', className: 'legend'});
    var actions = el('span', {className: 'actions'});
    var cancel = el('button', {id: 'cancel-button', text: 'Cancel job'});
    var savepoint = el('button', {id: 'savepoint-button', text: 'Savepoint'});
    cancel.addEventListener('click', function () {
      if (window.confirm('Cancel job ' + jobId + '?')) {
        post('jobs/' + encodeURIComponent(jobId) + '?mode=cancel', null, 'PATCH').then(function () { refresh(); });
      }
    });
    savepoint.addEventListener('click', function () {
      post('jobs/' + encodeURIComponent(jobId) + '/savepoints', {'cancel-job': false}).then(function (r) {
        info.textContent = r['request-id'] ? 'savepoint requested (' + r['request-id'] + ')'
                                           : 'savepoint: ' + (r.errors || []).join('; ');
      });
    });
    actions.appendChild(savepoint);
    actions.appendChild(cancel);
    var base = '#/jobs/' + encodeURIComponent(jobId);
    var tabs = el('div', {className: 'tabs'}, [
      el('a', {id: 'graph-link', href: base, className: tab === 'graph' ? 'active' : '', text: 'Graph'}),
      el('a', {id: 'checkpoints-link', href: base + '/checkpoints', className: tab === 'checkpoints' ? 'active' : '',
               text: 'Checkpoints'}),
      el('a', {id: 'exceptions-link', href: base + '/exceptions', className: tab === 'exceptions' ? 'active' : '',
               text: 'Exceptions'})
    ]);
    view.appendChild(el('div', {}, [actions, title]));
    view.appendChild(el('div', {}, [state, ' ', info]));
    view.appendChild(tabs);
    return {
      update: function (job) {
        title.textContent = (job.name || 'Job') + ' ';
        title.appendChild(el('small', {className: 'legend', text: job.jid}));
        replace(state, stateBadge(job.state));
        info.textContent = ' started ' + fmtTime(job['start-time']) + ' · running for ' +
          fmtDuration(job.duration) + ' · attempt ' + job.attempt + ' · restarts ' + job.restarts +
          (job['restored-from'] ? ' · restored from ' + job['restored-from'] : '') +
          (job.failure ? ' · ' + job.failure : '');
        var live = job.state === 'RUNNING' || job.state === 'CREATED' || job.state === 'RESTARTING';
        cancel.disabled = !live;
        savepoint.disabled = job.state !== 'RUNNING';
      }
    };
  }

  // Colour of a task: red as it gets busy, slate grey as it gets back-pressured.
  function taskColour(m) {
    var busy = Math.min(1, Math.max(0, m['busy-ratio'] || 0));
    var bp = Math.min(1, Math.max(0, m['backpressured-ratio'] || 0));
    if (bp > busy) return d3.interpolateRgb('#eef2f6', '#52606d')(bp);
    return d3.interpolateRgb('#e3f8ef', '#e12d39')(busy);
  }

  // Depth of each task: the longest path from a source (a simple layered layout).
  function depths(nodes) {
    var byId = {}, depth = {}, visiting = {};
    nodes.forEach(function (n) { byId[n.id] = n; });
    function d(id) {
      if (depth[id] !== undefined) return depth[id];
      if (visiting[id] || !byId[id]) return 0;
      visiting[id] = true;
      var best = 0;
      (byId[id].inputs || []).forEach(function (i) { best = Math.max(best, d(i.id) + 1); });
      visiting[id] = false;
      depth[id] = best;
      return best;
    }
    nodes.forEach(function (n) { d(n.id); });
    return depth;
  }

  function drawGraph(container, job, selected, onSelect) {
    var nodes = (job.plan && job.plan.nodes) || [];
    var metrics = {};
    (job.vertices || []).forEach(function (v) { metrics[v.id] = v; });
    var depth = depths(nodes);
    var W = 250, GX = 110, GY = 30, LINE = 16, PAD = 10;
    var columns = {};
    var layout = {};
    nodes.forEach(function (n) {
      var c = depth[n.id] || 0;
      columns[c] = columns[c] || [];
      columns[c].push(n);
    });
    var maxH = 0, maxCol = 0;
    Object.keys(columns).forEach(function (c) {
      var y = PAD;
      maxCol = Math.max(maxCol, +c);
      columns[c].forEach(function (n) {
        var ops = (n.operators && n.operators.length) ? n.operators.length : 1;
        var h = (ops + 3) * LINE + 12;
        layout[n.id] = {x: PAD + (+c) * (W + GX), y: y, h: h};
        y += h + GY;
      });
      maxH = Math.max(maxH, y);
    });
    var width = PAD * 2 + (maxCol + 1) * W + maxCol * GX;
    d3.select(container).selectAll('svg').remove();
    var svg = d3.select(container).append('svg').attr('width', width).attr('height', Math.max(maxH, 60))
      .attr('id', 'job-graph-svg');
    svg.append('defs').append('marker').attr('id', 'arrow').attr('viewBox', '0 0 10 10')
      .attr('refX', 10).attr('refY', 5).attr('markerWidth', 7).attr('markerHeight', 7).attr('orient', 'auto')
      .append('path').attr('d', 'M0,0 L10,5 L0,10 z').attr('fill', '#829ab1');

    var edges = [];
    nodes.forEach(function (n) {
      (n.inputs || []).forEach(function (i) {
        if (layout[i.id] && layout[n.id]) edges.push({from: i.id, to: n.id, input: i});
      });
    });
    var edgeG = svg.selectAll('g.edge').data(edges).enter().append('g').attr('class', 'edge');
    edgeG.append('path').attr('marker-end', 'url(#arrow)').attr('d', function (e) {
      var a = layout[e.from], b = layout[e.to];
      var x1 = a.x + W, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
      if (x2 <= x1) {  // same column (should not happen in a DAG by depth): loop around
        return 'M' + x1 + ',' + y1 + ' C' + (x1 + 60) + ',' + y1 + ' ' + (x2 - 60) + ',' + y2 + ' ' + x2 + ',' + y2;
      }
      var mx = (x1 + x2) / 2;
      return 'M' + x1 + ',' + y1 + ' C' + mx + ',' + y1 + ' ' + mx + ',' + y2 + ' ' + x2 + ',' + y2;
    });
    edgeG.append('text').attr('class', 'edge-label').attr('text-anchor', 'middle')
      .attr('x', function (e) { return (layout[e.from].x + W + layout[e.to].x) / 2; })
      .attr('y', function (e) {
        return (layout[e.from].y + layout[e.from].h / 2 + layout[e.to].y + layout[e.to].h / 2) / 2 - 4;
      })
      .text(function (e) {
        var s = (e.input.ship_strategy || '').toLowerCase();
        if (e.input.keys && e.input.keys.length) s += ' (' + e.input.keys.join(', ') + ')';
        if (e.input.output) s += ' [' + e.input.output + ']';
        return s;
      });

    var g = svg.selectAll('g.task-node').data(nodes).enter().append('g')
      .attr('class', function (n) { return 'task-node' + (n.id === selected ? ' selected' : ''); })
      .attr('data-task-id', function (n) { return n.id; })
      .attr('transform', function (n) { return 'translate(' + layout[n.id].x + ',' + layout[n.id].y + ')'; })
      .on('click', function (n) { onSelect(n.id); });
    g.append('rect').attr('width', W).attr('height', function (n) { return layout[n.id].h; })
      .attr('rx', 6).attr('ry', 6)
      .attr('fill', function (n) { return taskColour((metrics[n.id] || {}).metrics || {}); });
    g.append('text').attr('class', 'task-title').attr('x', 10).attr('y', LINE + 2)
      .text(function (n) { return n.id + '  ×' + n.parallelism + '  ' + ((metrics[n.id] || {}).status || ''); });
    g.each(function (n) {
      var sel = d3.select(this);
      var ops = n.operators && n.operators.length ? n.operators : [{id: n.id, type: ''}];
      ops.forEach(function (op, i) {
        sel.append('text').attr('class', 'task-operator').attr('x', 18).attr('y', (i + 2) * LINE + 2)
          .text((i > 0 ? '↳ ' : '') + op.id + (op.type ? ' (' + op.type + ')' : ''));
      });
      var m = (metrics[n.id] || {}).metrics || {};
      var y = (ops.length + 2) * LINE + 4;
      var hasInputs = n.inputs && n.inputs.length > 0;
      var rate = hasInputs ? m['read-records-per-second'] : m['write-records-per-second'];
      sel.append('text').attr('class', 'task-rate').attr('x', 10).attr('y', y)
        .attr('data-rate', rate || 0)
        .text(fmtNum(rate || 0) + ' rec/s ' + (hasInputs ? 'in' : 'out') +
              (hasInputs ? ' · ' + fmtNum(m['write-records-per-second'] || 0) + ' out' : ''));
      sel.append('text').attr('class', 'task-load').attr('x', 10).attr('y', y + LINE)
        .text('busy ' + pct(m['busy-ratio']) + ' · back-pressured ' + pct(m['backpressured-ratio']));
    });
    if (nodes.length === 0) {
      svg.append('text').attr('x', 10).attr('y', 30).attr('class', 'empty').text('no tasks yet');
    }
  }

  function jobView(jobId) {
    var header = jobHeader(jobId, 'graph');
    var graph = el('div', {id: 'job-graph'});
    var legend = el('div', {className: 'legend'}, [
      'Colour:', el('span', {className: 'swatch', style: 'background:#e3f8ef'}), 'idle',
      el('span', {className: 'swatch', style: 'background:#e12d39'}), 'busy',
      el('span', {className: 'swatch', style: 'background:#52606d'}), 'back-pressured',
      ' · click a task to chart it alone']);
    var chartTitle = el('h2', {text: 'Throughput (records/s, last minutes)'});
    var canvas = el('canvas', {id: 'throughput-chart'});
    var recon = el('div', {id: 'reconciliation', className: 'panel reconciliation'});
    var vertexBox = el('div', {id: 'vertex-table'});
    view.appendChild(el('div', {className: 'panel'}, [graph, legend]));
    view.appendChild(el('div', {className: 'row'}, [
      el('div', {className: 'panel'}, [chartTitle, el('div', {className: 'chart-box'}, [canvas])]),
      el('div', {className: 'panel'}, [el('h2', {text: 'Reconciliation (latest checkpoint)'}), recon])]));
    view.appendChild(el('h2', {text: 'Tasks'}));
    view.appendChild(vertexBox);
    var subtaskTitle = el('h2', {text: ''});
    var subtaskBox = el('div', {id: 'subtask-table'});
    view.appendChild(subtaskTitle);
    view.appendChild(subtaskBox);
    var chart = lineChart(canvas, [{id: 'y', title: 'records/s'}]);
    var selected = null;
    var lastJob = null;

    function noteLocal(job) {
      var h = localHistory[jobId] = localHistory[jobId] || [];
      var s = {time: Date.now(), 'records-in-per-second': {}, 'records-out-per-second': {}};
      (job.vertices || []).forEach(function (v) {
        s['records-in-per-second'][v.id] = v.metrics['read-records-per-second'] || 0;
        s['records-out-per-second'][v.id] = v.metrics['write-records-per-second'] || 0;
      });
      h.push(s);
      while (h.length > 300) h.shift();
    }

    function drawChart(job, samples) {
      var ids = (job.plan.nodes || []).map(function (n) { return n.id; });
      var sources = {};
      (job.plan.nodes || []).forEach(function (n) { if (!n.inputs || !n.inputs.length) sources[n.id] = true; });
      if (selected) ids = ids.filter(function (id) { return id === selected; });
      chart.data.labels = samples.map(function (s) { return fmtClock(s.time); });
      chart.data.datasets = ids.map(function (id, i) {
        var key = sources[id] ? 'records-out-per-second' : 'records-in-per-second';
        return {label: id + (sources[id] ? ' (out)' : ' (in)'), borderColor: PALETTE[i % PALETTE.length],
                backgroundColor: PALETTE[i % PALETTE.length], borderWidth: 1.5, yAxisID: 'y',
                data: samples.map(function (s) { return (s[key] || {})[id] || 0; })};
      });
      chart.update('none');
    }

    function drawRecon(r) {
      clear(recon);
      if (!r) {
        recon.appendChild(el('div', {className: 'empty', text: 'no completed checkpoint with record counts yet'}));
        return;
      }
      var eq = el('div', {className: 'equation'}, [
        'read ', el('b', {id: 'recon-read', text: fmtNum(r.read)}), ' = committed ', el('b', {text: fmtNum(r.committed)}),
        ' + late ', el('b', {id: 'recon-late', className: r.late ? 'warn' : '', text: fmtNum(r.late)}),
        ' + dirty ', el('b', {id: 'recon-dirty', className: r.dirty ? 'warn' : '', text: fmtNum(r.dirty)}),
        ' + filtered ', el('b', {text: fmtNum(r.filtered)})]);
      recon.appendChild(eq);
      // The same words as `weir status`: a difference is expected of jobs that aggregate or fan
      // out (their sinks see other records than the sources read).
      var note;
      if (r.balanced) note = '✓ balanced at checkpoint ' + r.checkpoint;
      else if (r.uncommitted) note = fmtNum(r.uncommitted) + ' in files whose commit failed and is retried (checkpoint ' + r.checkpoint + ')';
      else note = 'differs by ' + fmtNum(r.unaccounted) + ' at checkpoint ' + r.checkpoint + ' (jobs that aggregate or fan out do not balance)';
      recon.appendChild(el('div', {id: 'recon-note', className: r.balanced ? 'ok' : 'warn', text: note}));
      recon.appendChild(el('div', {className: 'legend',
                                   text: 'dirty: records a sink or parser rejected; late: records behind the watermark'}));
    }

    function render(job) {
      drawGraph(graph, job, selected, function (id) {
        selected = selected === id ? null : id;
        render(lastJob);
        refresh();
      });
      replace(vertexBox, table('vertices', ['Task', 'Operators', {label: 'Parallelism', num: true}, 'Status',
                                            {label: 'Records in', num: true}, {label: 'Records out', num: true},
                                            {label: 'In/s', num: true}, {label: 'Out/s', num: true},
                                            {label: 'Busy', num: true}, {label: 'Back-pressured', num: true}],
        (job.vertices || []).map(function (v) {
          var m = v.metrics || {};
          return [v.id, v.name, String(v.parallelism), v.status, fmtNum(m['read-records']), fmtNum(m['write-records']),
                  fmtNum(m['read-records-per-second']), fmtNum(m['write-records-per-second']),
                  pct(m['busy-ratio']), pct(m['backpressured-ratio'])];
        }), 'no tasks'));
    }

    function drawSubtasks(v) {
      clear(subtaskBox);
      subtaskTitle.textContent = v ? 'Subtasks of ' + v.id : '';
      if (!v) return;
      subtaskBox.appendChild(table('subtasks', [{label: 'Subtask', num: true}, 'Status', 'Task manager',
                                                {label: 'Records in', num: true}, {label: 'Records out', num: true},
                                                {label: 'In/s', num: true}, {label: 'Out/s', num: true},
                                                {label: 'Busy', num: true}, {label: 'Back-pressured', num: true},
                                                'Input watermark', 'Failure'],
        (v.subtasks || []).map(function (s) {
          var m = s.metrics || {};
          return [String(s.subtask), s.status, s['taskmanager-id'], fmtNum(m['read-records']),
                  fmtNum(m['write-records']), fmtNum(m['read-records-per-second']),
                  fmtNum(m['write-records-per-second']), pct(m['busy-ratio']), pct(m['backpressured-ratio']),
                  m['input-watermark'] ? fmtTime(m['input-watermark']) : '-', s.failure || ''];
        }), 'no subtasks'));
    }

    return {
      update: function () {
        var base = 'jobs/' + encodeURIComponent(jobId);
        return Promise.all([api(base), api(base + '/throughput'), api(base + '/checkpoints')]).then(function (r) {
          var job = r[0];
          lastJob = job;
          header.update(job);
          noteLocal(job);
          if (selected && !(job.vertices || []).some(function (v) { return v.id === selected; })) selected = null;
          render(job);
          var samples = (r[1].samples && r[1].samples.length) ? r[1].samples : localHistory[jobId];
          drawChart(job, samples);
          drawRecon(r[2].reconciliation);
          if (!selected) return drawSubtasks(null);
          return api(base + '/vertices/' + encodeURIComponent(selected)).then(drawSubtasks);
        });
      },
      destroy: function () { chart.destroy(); }
    };
  }

  function checkpointsView(jobId) {
    var header = jobHeader(jobId, 'checkpoints');
    var cards = el('div', {className: 'cards', id: 'checkpoint-counts'});
    var canvas = el('canvas', {id: 'checkpoint-chart'});
    var box = el('div', {id: 'checkpoint-history'});
    view.appendChild(cards);
    view.appendChild(el('div', {className: 'panel'}, [el('h2', {text: 'Duration and size'}),
                                                      el('div', {className: 'chart-box'}, [canvas])]));
    view.appendChild(el('h2', {text: 'History'}));
    view.appendChild(box);
    var chart = lineChart(canvas, [{id: 'duration', title: 'duration (ms)'}, {id: 'size', title: 'size (bytes)'}]);
    return {
      update: function () {
        var base = 'jobs/' + encodeURIComponent(jobId);
        return Promise.all([api(base), api(base + '/checkpoints')]).then(function (r) {
          header.update(r[0]);
          var c = r[1], counts = c.counts || {}, history = c.history || [];
          clear(cards);
          [['Completed', counts.completed], ['Failed', counts.failed], ['In progress', counts.in_progress],
           ['Restored', counts.restored],
           ['Latest', c.latest && c.latest.completed ? '#' + c.latest.completed.id : '-']].forEach(function (x) {
            cards.appendChild(el('div', {className: 'card'}, [el('div', {className: 'value', text: String(x[1])}),
                                                              el('div', {className: 'label', text: x[0]})]));
          });
          replace(box, table('checkpoint-table',
            [{label: 'Id', num: true}, 'Status', 'Kind', 'Triggered', {label: 'Duration', num: true},
             {label: 'State size', num: true}, {label: 'Checkpointed', num: true}, {label: 'Alignment', num: true},
             {label: 'Sync', num: true}, {label: 'Async', num: true}, 'Path / failure'],
            history.map(function (h) {
              return [String(h.id), stateBadge(h.status), h.is_savepoint ? 'savepoint' : 'checkpoint',
                      fmtTime(h.trigger_timestamp), fmtDuration(h.end_to_end_duration), fmtBytes(h.state_size),
                      fmtBytes(h.checkpointed_size), h.alignment_duration + ' ms', h.sync_duration + ' ms',
                      h.async_duration + ' ms', h.failure_message || h.external_path];
            }), 'no checkpoints yet'));
          var done = history.filter(function (h) { return h.status === 'COMPLETED'; }).reverse();
          chart.data.labels = done.map(function (h) { return '#' + h.id; });
          chart.data.datasets = [
            {label: 'duration (ms)', yAxisID: 'duration', borderColor: PALETTE[0], backgroundColor: PALETTE[0],
             data: done.map(function (h) { return h.end_to_end_duration; }), pointRadius: 2},
            {label: 'state size (bytes)', yAxisID: 'size', borderColor: PALETTE[2], backgroundColor: PALETTE[2],
             data: done.map(function (h) { return h.state_size; }), pointRadius: 2},
            {label: 'checkpointed (bytes)', yAxisID: 'size', borderColor: PALETTE[3], backgroundColor: PALETTE[3],
             data: done.map(function (h) { return h.checkpointed_size; }), pointRadius: 2}];
          chart.update('none');
        });
      },
      destroy: function () { chart.destroy(); }
    };
  }

  function exceptionsView(jobId) {
    var header = jobHeader(jobId, 'exceptions');
    var root = el('div', {id: 'root-exception', className: 'panel'});
    var box = el('div');
    view.appendChild(root);
    view.appendChild(el('h2', {text: 'History (newest first)'}));
    view.appendChild(box);
    return {
      update: function () {
        var base = 'jobs/' + encodeURIComponent(jobId);
        return Promise.all([api(base), api(base + '/exceptions')]).then(function (r) {
          header.update(r[0]);
          var e = r[1];
          clear(root);
          if (e['root-exception']) {
            root.appendChild(el('div', {}, [el('b', {text: 'Root cause '}), fmtTime(e.timestamp)]));
            root.appendChild(el('div', {className: 'cause', text: e['root-exception']}));
          } else {
            root.appendChild(el('div', {className: 'empty', text: 'no failures'}));
          }
          var entries = (e.exceptionHistory && e.exceptionHistory.entries) || [];
          replace(box, table('exception-table', ['Time', 'Root cause', {label: 'Attempt', num: true}, 'Cause'],
            entries.map(function (x) {
              return [fmtTime(x.timestamp), x['root-cause'] ? el('span', {className: 'root-cause-mark', text: 'root cause'})
                                                           : 'secondary',
                      String(x.attempt), el('span', {className: 'cause', text: x.stacktrace})];
            }), 'no exceptions'));
        });
      }
    };
  }

  // ------------------------------------------------------------------ routing
  function route() {
    var hash = window.location.hash.replace(/^#\/?/, '');
    var parts = hash.split('/').filter(function (p) { return p.length > 0; }).map(decodeURIComponent);
    if (current && current.destroy) current.destroy();
    current = null;
    clear(view);
    showError(null);
    document.querySelectorAll('header nav a').forEach(function (a) { a.classList.remove('active'); });
    if (parts[0] === 'jobs' && parts[1]) {
      if (parts[2] === 'checkpoints') current = checkpointsView(parts[1]);
      else if (parts[2] === 'exceptions') current = exceptionsView(parts[1]);
      else current = jobView(parts[1]);
    } else if (parts[0] === 'taskmanagers') {
      document.getElementById('nav-taskmanagers').classList.add('active');
      current = taskManagersView();
    } else {
      document.getElementById('nav-overview').classList.add('active');
      current = overviewView();
    }
    busy = false;
    refresh();
  }

  function refresh() {
    if (busy || !current) return;
    busy = true;
    var mine = current;
    mine.update().then(function () {
      if (mine === current) {
        showError(null);
        statusLine.textContent = 'updated ' + new Date().toLocaleTimeString('en-GB');
        view.setAttribute('data-loaded', 'true');
      }
    }, function (err) {
      if (mine === current) showError(err);
    }).then(function () { if (mine === current) busy = false; });
  }

  window.addEventListener('hashchange', route);
  route();
  timer = setInterval(refresh, REFRESH_MS);
})();
