// cautograd report: draws the data island (lib/report/report_data.cc,
// docs/report.md "The data") into the page. Every string from the trace
// reaches the page through textContent or an attribute, never as markup.
'use strict';

(function () {
  const D = JSON.parse(document.getElementById('cautograd-data').textContent);
  const SVG = 'http://www.w3.org/2000/svg';
  const MAX_LABEL = 48;

  // --- small helpers ---------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }
  function sv(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  function us(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(2) + ' s';
    if (v >= 1000) return (v / 1000).toFixed(2) + ' ms';
    return Math.round(v) + ' us';
  }
  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
  }
  // A number from the data, or its text where JSON could not hold it ("nan", "inf").
  function num(v, digits) { return typeof v === 'number' ? v.toPrecision(digits) : String(v); }
  function plural(n, word, many) { return n + ' ' + (n === 1 ? word : many || word + 's'); }
  function cut(s) { return s.length > MAX_LABEL ? s.slice(0, MAX_LABEL - 1) + '\u2026' : s; }
  function shapeText(shape) { return '[' + shape.join(', ') + ']'; }
  function explain(text) { return el('p', { class: 'explain' }, text); }
  function table(headers, rows, onRow) {
    const t = el('table', {}, el('tr', {}, ...headers.map((h) => el('th', { class: h.num ? 'num' : '' }, h.text || h))));
    rows.forEach((r, i) => {
      const tr = el('tr', onRow ? { class: 'clickable', onclick: () => onRow(i) } : {});
      r.forEach((c, j) => tr.appendChild(el('td', { class: headers[j].num ? 'num' : (headers[j].mono ? 'mono' : '') }, c)));
      t.appendChild(tr);
    });
    return t;
  }
  function section(id, title, text) {
    const s = el('section', { id }, el('h2', {}, title), explain(text));
    app.appendChild(s);
    return s;
  }

  // --- state -----------------------------------------------------------------
  const app = document.getElementById('app');
  const state = { trace: 0, call: 0, view: null, selected: null, matches: [], matchAt: -1 };
  const tip = el('div', { class: 'tip' });
  document.body.appendChild(tip);
  function showTip(ev, text) {
    tip.textContent = text;
    tip.style.display = 'block';
    tip.style.left = ev.clientX + 14 + 'px';
    tip.style.top = ev.clientY + 10 + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }

  function curTrace() { return D.traces[state.trace]; }
  function curCall() { return curTrace().calls[state.call]; }

  // Per call, built once: nodes by id, ops per node, tensors by id, who shares a storage.
  const indexCache = new Map();
  function index(call) {
    let ix = indexCache.get(call);
    if (ix) return ix;
    ix = { node: new Map(), opsOf: new Map(), tensor: new Map(), byStorage: new Map(), values: new Map(), maxDur: 0 };
    for (const n of call.nodes) { ix.node.set(n.id, n); ix.maxDur = Math.max(ix.maxDur, n.dur); }
    for (const op of call.ops) {
      if (!ix.opsOf.has(op[2])) ix.opsOf.set(op[2], []);
      ix.opsOf.get(op[2]).push(op);
    }
    for (const t of call.tensors) {
      ix.tensor.set(t[0], t);
      if (t[6] >= 0) {
        if (!ix.byStorage.has(t[6])) ix.byStorage.set(t[6], []);
        ix.byStorage.get(t[6]).push(t[0]);
      }
    }
    for (const v of call.values) {
      if (!ix.values.has(v[0])) ix.values.set(v[0], []);
      ix.values.get(v[0]).push(v[1] === 'after_op' ? 'after op ' + v[2] : v[1]);
    }
    indexCache.set(call, ix);
    return ix;
  }

  // Where a difference (`diff --format json`'s) is on trace A (side 0) or
  // B (1): its call index and node id, -1 where it names none.
  function diffAt(d, side) {
    const node = side ? d.node_b : d.node_a;
    return { call: (side ? d.call_b : d.call_a) ?? -1, node: node ? node.id : -1 };
  }

  // Nodes a diff names, per trace and call: Map(call -> Set(node id)).
  const changed = [new Map(), new Map()];
  if (D.diff) {
    for (const d of D.diff.differences) {
      for (const side of [0, 1]) {
        const { call: c, node: n } = diffAt(d, side);
        if (c < 0 || n < 0) continue;
        if (!changed[side].has(c)) changed[side].set(c, new Set());
        changed[side].get(c).add(n);
      }
    }
  }
  function changedNodes() {
    if (!D.diff) return new Set();
    return changed[state.trace].get(curCall().index) || new Set();
  }

  // --- header ----------------------------------------------------------------
  const header = el('header');
  app.appendChild(header);
  function renderHeader() {
    header.replaceChildren();
    const names = D.traces.map((t) => t.name).join(' vs ');
    header.appendChild(el('h1', {}, 'cautograd report: ' + names));
    document.title = 'cautograd: ' + names;
    const t = curTrace();
    const m = t.meta;
    header.appendChild(el('div', { class: 'meta' },
      'recorded ' + m.time + ' on ' + m.host + ' by cautograd ' + m.tool_version + ', libtorch ' +
      m.libtorch_version + ', values=' + m.values + (m.seed !== undefined ? ', seed=' + m.seed : '') +
      (m.command.length ? '; command: ' + m.command.join(' ') : '') + '. Trace format v' + m.version + '; ' + D.tool + '.'));
    const bar = el('div', { class: 'toolbar' });
    if (D.traces.length > 1) {
      const sel = el('select', { id: 'trace-select', onchange: (e) => { state.trace = +e.target.value; state.call = 0; renderAll(); } });
      D.traces.forEach((tr, i) => sel.appendChild(el('option', { value: i }, (i ? 'B: ' : 'A: ') + tr.name)));
      sel.value = state.trace;
      bar.appendChild(el('label', {}, 'trace ', sel));
    }
    const cs = el('select', { id: 'call-select', onchange: (e) => { state.call = +e.target.value; renderAll(); } });
    t.calls.forEach((c, i) => cs.appendChild(el('option', { value: i },
      'call ' + c.index + ': ' + c.api + ', ' + c.nodes.length + ' nodes, ' + c.ops.length + ' ops, ' + us(c.duration))));
    cs.value = state.call;
    if (t.calls.length) bar.appendChild(el('label', {}, 'call ', cs));
    header.appendChild(bar);
  }

  // --- graph -----------------------------------------------------------------
  const graphSec = section('graph', 'Backward graph',
    'The nodes autograd ran for this call, from the roots (top) to the leaves (bottom); an edge goes from a node to ' +
    'the node it passes a gradient to. Colour is time (yellow fast, red slow); a purple border has hooks; a green ' +
    'border is a leaf, named by its parameter where the program gave one; dashed did not run. Repeated structure ' +
    '(identical layers, blocks) is one blue box with a count: click it to expand that run. Drag to pan, wheel to zoom, ' +
    'search by node type, leaf name or op; click a node for its ops, tensors, hooks and guards.');
  const toolbar = el('div', { class: 'toolbar' });
  const search = el('input', { type: 'search', id: 'search', placeholder: 'search nodes and ops (Enter: next)' });
  const searchCount = el('span', { class: 'legend' });
  const viewLabel = el('span', { class: 'legend', id: 'view-label' });
  const btnCollapse = el('button', { id: 'collapse-all', onclick: () => setView('collapsed') }, 'Collapse repeats');
  const btnExpand = el('button', { id: 'expand-all', onclick: () => setView('full') }, 'Expand all');
  const btnFit = el('button', { id: 'fit', onclick: () => fit() }, 'Fit');
  toolbar.append(btnCollapse, btnExpand, btnFit, search, searchCount, viewLabel);
  const graphBox = el('div', { class: 'graph', id: 'graph-box' });
  const details = el('div', { class: 'details', id: 'details' }, 'Click a node for its details.');
  graphSec.append(toolbar, el('div', { class: 'graph-wrap' }, graphBox, details));
  const zoom = { k: 1, x: 0, y: 0 };
  let viewport = null;
  let svgRoot = null;
  let boxes = new Map(); // key -> [x, y, w, h]

  function currentView(call) {
    const v = call.views;
    if (!v) return null;
    if (state.view === null) state.view = call.opens === 'collapsed' ? 'collapsed' : 'full';
    if (state.view === 'collapsed' && v.collapsed) return v.collapsed;
    if (state.view.startsWith('expand:') && v.expand) return v.expand[+state.view.slice(7)] || v.full;
    return v.full;
  }
  function setView(name) {
    state.view = name;
    renderGraph();
  }
  function applyZoom() { if (viewport) viewport.setAttribute('transform', `translate(${zoom.x},${zoom.y}) scale(${zoom.k})`); }
  function fit() {
    if (!svgRoot) return;
    const W = graphBox.clientWidth || 800, H = graphBox.clientHeight || 600;
    const L = svgRoot.__layout;
    let k = Math.min(1.5, W / (L.w + 40), H / (L.h + 40));
    // A graph too large to read whole opens at a legible size, from the top.
    if (k < 0.35) k = Math.max(0.35, Math.min(1, W / (L.w + 40)));
    zoom.k = k;
    zoom.x = L.w * k <= W ? (W - L.w * k) / 2 : 10;
    zoom.y = L.h * k <= H ? (H - L.h * k) / 2 : 10;
    applyZoom();
  }
  function centerOn(key) {
    const b = boxes.get(key);
    if (!b) return;
    const W = graphBox.clientWidth || 800, H = graphBox.clientHeight || 600;
    zoom.k = Math.max(zoom.k, 0.8);
    zoom.x = W / 2 - b[0] * zoom.k;
    zoom.y = H / 2 - b[1] * zoom.k;
    applyZoom();
  }

  function heat(r) {
    r = Math.max(0, Math.min(1, r || 0));
    return `hsl(${Math.round(55 - 55 * r)}, 90%, ${Math.round(90 - 35 * r)}%)`;
  }

  function renderGraph() {
    const call = curCall();
    graphBox.replaceChildren();
    svgRoot = null;
    viewport = null;
    boxes = new Map();
    state.matches = [];
    searchCount.textContent = '';
    viewLabel.textContent = '';
    if (!call) return;
    const hasGroups = call.groups.length > 0;
    const v = currentView(call);
    btnCollapse.disabled = !v || !hasGroups || state.view === 'collapsed';
    btnExpand.disabled = !v || !hasGroups || state.view === 'full';
    if (!v) {
      graphBox.appendChild(el('div', { class: 'note' }, 'Graph not drawn: ' + (D.graph_note || 'no layout.')));
      return;
    }
    const L = D.layouts[v.layout];
    if (L.error) {
      graphBox.appendChild(el('div', { class: 'error' }, 'Graph not drawn: ' + L.error));
      return;
    }
    viewLabel.textContent = state.view === 'full' ? v.keys.length + ' nodes'
      : v.keys.length + ' boxes (' + call.nodes.length + ' nodes; ' + (state.view === 'collapsed' ? 'repeats collapsed' : 'one run expanded') + ')';
    const ix = index(call);
    const diffNodes = changedNodes();
    const svg = sv('svg', { id: 'graph-svg' });
    svg.__layout = L;
    const defs = sv('defs');
    const marker = sv('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    marker.appendChild(sv('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8894a2' }));
    defs.appendChild(marker);
    svg.appendChild(defs);
    viewport = sv('g', { id: 'viewport' });
    svg.appendChild(viewport);
    const edges = sv('g', { class: 'edges' });
    for (const e of L.edges) {
      const p = e[3];
      let d = `M${p[0]},${p[1]}`;
      for (let i = 2; i + 5 < p.length; i += 6) d += ` C${p[i]},${p[i + 1]} ${p[i + 2]},${p[i + 3]} ${p[i + 4]},${p[i + 5]}`;
      edges.appendChild(sv('path', { class: e[2] > 1 ? 'edge multi' : 'edge', d, 'marker-end': 'url(#arrow)' }));
    }
    viewport.appendChild(edges);
    const nodes = sv('g', { class: 'nodes' });
    v.keys.forEach((key, i) => {
      const [x, y, w, h] = L.nodes[i];
      boxes.set(key, [x, y, w, h]);
      const g = sv('g', { class: 'node', 'data-key': key, transform: `translate(${x - w / 2},${y - h / 2})` });
      const isGroup = key[0] === 'g';
      let title = v.labels[i];
      if (isGroup) {
        g.classList.add('group');
        g.appendChild(sv('rect', { class: 'back', x: 4, y: -4, width: w, height: h, rx: 4 }));
        g.appendChild(sv('rect', { width: w, height: h, rx: 4 }));
        title += ' \u2014 click to expand';
      } else {
        const n = ix.node.get(+key.slice(1));
        const rect = sv('rect', { width: w, height: h, rx: n && n.leaf ? h / 2 : 3, fill: n ? heat(ix.maxDur ? n.dur / ix.maxDur : 0) : '#eee' });
        g.appendChild(rect);
        if (n) {
          if (n.leaf) g.classList.add('leaf');
          if (n.exec < 0) g.classList.add('unexecuted');
          const hooks = n.hooks || [];
          if (hooks.some((hk) => hk[0] !== 'retain_grad')) {
            g.classList.add('hooked');
            badge(g, w, 'hook', 'H', 0);
          }
          if (hooks.some((hk) => hk[0] === 'retain_grad')) badge(g, w, 'retain', 'R', 1);
          if (diffNodes.has(n.id)) { g.classList.add('changed'); badge(g, w, 'diff', '\u0394', 2); }
          title = n.type + (n.leaf && n.leaf.name ? ' ' + n.leaf.name : '') + ' \u2014 ' + us(n.dur);
        }
      }
      const text = sv('text', { x: w / 2, y: h / 2 + 4, 'text-anchor': 'middle' });
      text.textContent = cut(v.labels[i]);
      g.appendChild(text);
      const t = sv('title');
      t.textContent = title;
      g.appendChild(t);
      if (state.selected === key) g.classList.add('selected');
      nodes.appendChild(g);
    });
    viewport.appendChild(nodes);
    graphBox.appendChild(svg);
    svgRoot = svg;
    fit();
    applySearch();
  }
  function badge(g, w, cls, letter, slot) {
    const cx = w - 6 - slot * 13;
    g.appendChild(sv('circle', { class: cls, cx, cy: -2, r: 6 }));
    const t = sv('text', { class: 'badge', x: cx, y: 1, 'text-anchor': 'middle' });
    t.textContent = letter;
    g.appendChild(t);
  }

  // Pan, zoom and clicks on the graph.
  let drag = null;
  graphBox.addEventListener('mousedown', (ev) => { drag = { x: ev.clientX, y: ev.clientY, zx: zoom.x, zy: zoom.y, moved: false }; });
  window.addEventListener('mousemove', (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    zoom.x = drag.zx + dx;
    zoom.y = drag.zy + dy;
    applyZoom();
  });
  window.addEventListener('mouseup', () => { setTimeout(() => { drag = null; }, 0); });
  graphBox.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const r = graphBox.getBoundingClientRect();
    const mx = ev.clientX - r.left, my = ev.clientY - r.top;
    const f = Math.exp(-ev.deltaY * 0.0015);
    const k = Math.max(0.02, Math.min(8, zoom.k * f));
    zoom.x = mx - (mx - zoom.x) * (k / zoom.k);
    zoom.y = my - (my - zoom.y) * (k / zoom.k);
    zoom.k = k;
    applyZoom();
  }, { passive: false });
  graphBox.addEventListener('click', (ev) => {
    if (drag && drag.moved) return;
    const g = ev.target.closest && ev.target.closest('g.node');
    if (!g) return;
    const key = g.getAttribute('data-key');
    if (key[0] === 'g') {
      const call = curCall();
      const gid = +key.slice(1);
      setView(call.groups.length === 1 ? 'full' : 'expand:' + gid);
      const first = call.groups[gid] && call.groups[gid].instances[0];
      if (first && first.length) centerOn('n' + first[0]);
      showGroup(call.groups[gid]);
      return;
    }
    selectNode(key);
  });

  function selectNode(key) {
    state.selected = key;
    for (const g of graphBox.querySelectorAll('g.node.selected')) g.classList.remove('selected');
    const g = graphBox.querySelector(`g.node[data-key="${key}"]`);
    if (g) g.classList.add('selected');
    showNode(+key.slice(1));
  }

  // Shows node `id`, expanding the run that hides it when it is hidden.
  function revealNode(id) {
    const key = 'n' + id;
    if (!boxes.has(key)) {
      const call = curCall();
      const g = call.groups.find((gr) => gr.instances.some((inst) => inst.includes(id)));
      if (g) setView(call.groups.length === 1 ? 'full' : 'expand:' + g.id);
    }
    centerOn(key);
    selectNode(key);
  }

  // --- search ----------------------------------------------------------------
  function applySearch() {
    for (const g of graphBox.querySelectorAll('g.node.match')) g.classList.remove('match');
    const q = search.value.trim().toLowerCase();
    state.matches = [];
    state.matchAt = -1;
    if (!q) { searchCount.textContent = ''; return; }
    const call = curCall();
    const ix = index(call);
    const hit = new Set();
    for (const n of call.nodes) {
      const ops = ix.opsOf.get(n.id) || [];
      if (n.type.toLowerCase().includes(q) || n.label.toLowerCase().includes(q) || ops.some((op) => op[1].toLowerCase().includes(q))) hit.add(n.id);
    }
    const groupOf = new Map();
    for (const gr of call.groups) for (const inst of gr.instances) for (const id of inst) groupOf.set(id, 'g' + gr.id);
    const keys = new Set();
    for (const id of hit) keys.add(boxes.has('n' + id) ? 'n' + id : groupOf.get(id));
    for (const key of keys) {
      const g = key && graphBox.querySelector(`g.node[data-key="${key}"]`);
      if (g) { g.classList.add('match'); state.matches.push(key); }
    }
    searchCount.textContent = hit.size + ' node' + (hit.size === 1 ? '' : 's') + ' match' + (keys.size !== hit.size ? ' (' + state.matches.length + ' boxes)' : '');
  }
  search.addEventListener('input', applySearch);
  search.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || !state.matches.length) return;
    state.matchAt = (state.matchAt + 1) % state.matches.length;
    centerOn(state.matches[state.matchAt]);
  });

  // --- details ---------------------------------------------------------------
  function tensorText(ix, id) {
    const t = ix.tensor.get(id);
    if (!t) return 't' + id;
    return 't' + id + ' ' + t[4] + shapeText(t[1]) + (t[5] && t[5] !== 'cpu' ? ' ' + t[5] : '');
  }
  function nodeLink(ix, id) {
    const n = ix.node.get(id);
    return el('a', { class: 'link', onclick: () => revealNode(id) }, n ? n.label + ' (' + id + ')' : 'node ' + id);
  }
  function showGroup(g) {
    details.replaceChildren(el('h3', {}, g.label),
      el('div', {}, g.count + ' runs of ' + g.period + ' nodes one after another, each with the same node types, hooks ' +
        'and edges' + (g.instances[0].length > g.period ? ', and the leaves only it feeds' : '') + '.'));
  }
  function showNode(id) {
    const call = curCall();
    const ix = index(call);
    const n = ix.node.get(id);
    if (!n) return;
    const parts = [el('h3', {}, n.label + (n.label !== n.type ? ' \u2014 ' + n.type : ''))];
    parts.push(el('div', {}, 'node ' + n.id + ', sequence_nr ' + n.seq + ', ' +
      (n.exec >= 0 ? 'ran ' + ordinal(n.exec) + ' at +' + us(n.start) + ' for ' + us(n.dur) : 'did not run')));
    if (n.leaf) {
      const l = n.leaf;
      parts.push(el('h4', {}, 'leaf'), el('div', {}, (l.name || 'unnamed') + ': ' + l.dtype + shapeText(l.shape) +
        '; .grad before: ' + (l.grad_before >= 0 ? 't' + l.grad_before : 'none') + ', after: ' + (l.grad_after >= 0 ? 't' + l.grad_after : 'none')));
    }
    if (n.hooks) parts.push(el('h4', {}, 'hooks'), table(['kind', 'language', 'type'], n.hooks.map((h) => [h[0], h[1], h[2]])));
    if (n.inputs.length) parts.push(el('h4', {}, 'gradients it takes'), table(['#', 'shape', 'dtype', 'device'],
      n.inputs.map((m, i) => [i, shapeText(m[0]), m[1], m[2]])));
    if (n.next.length) {
      const list = el('div', {});
      n.next.forEach((e, i) => {
        list.appendChild(el('div', {}, 'output ' + i + ' \u2192 ', e[0] >= 0 ? nodeLink(ix, e[0]) : 'nothing (no grad needed)', e[0] >= 0 ? ' input ' + e[1] : ''));
      });
      parts.push(el('h4', {}, 'edges'), list);
    }
    const ops = ix.opsOf.get(n.id) || [];
    const seen = new Set();
    if (ops.length) {
      parts.push(el('h4', {}, ops.length + ' ops'));
      // One block per op: the panel is narrow and arguments are long.
      for (const op of ops) {
        const args = op[7].map((a) => { a[2].forEach((t) => seen.add(t)); return a[0] + '=' + (a[2].length === 1 ? tensorText(ix, a[2][0]) : a[1]); });
        const outs = op[8].map((a) => { a[2].forEach((t) => seen.add(t)); return a[2].length === 1 ? tensorText(ix, a[2][0]) : a[1]; });
        parts.push(el('div', { class: 'op' }, el('strong', {}, op[1]), ' #' + op[0] + ', ' + op[3] + ', thread ' + op[4] + ', ' + us(op[6]),
          el('div', { class: 'mono' }, '(' + args.join(', ') + ')' + (outs.length ? ' \u2192 ' + outs.join(', ') : ''))));
      }
    }
    for (const t of n.grads_in || []) seen.add(t);
    if (seen.size) {
      const rows = [...seen].sort((a, b) => a - b).map((tid) => {
        const t = ix.tensor.get(tid);
        if (!t) return ['t' + tid, '?', '', '', '', '', ''];
        const others = (ix.byStorage.get(t[6]) || []).filter((o) => o !== tid);
        return ['t' + tid + (t[8] ? ' ' + t[8] : ''), t[4] + shapeText(t[1]), shapeText(t[2]) + (t[3] ? ' +' + t[3] : ''),
          t[7].join(', '), others.length ? 'shares storage ' + t[6] + ' with ' + others.slice(0, 6).map((o) => 't' + o).join(', ') + (others.length > 6 ? ', \u2026' : '') : '',
          (ix.values.get(tid) || ['not kept']).join(', ')];
      });
      parts.push(el('h4', {}, 'tensors'), table(['tensor', 'dtype, shape', 'strides', 'roles', 'aliasing', 'values kept'], rows));
    }
    const gt = call.guards.tensors.filter((g) => g[0] === id);
    const gs = call.guards.scalars.filter((g) => g[0] === id);
    const gz = call.guards.sizes.filter((g) => g[0] === id);
    if (gt.length || gs.length || gz.length) {
      parts.push(el('h4', {}, 'guards (what compiled autograd keys this node on)'));
      if (gt.length) parts.push(table(['tensor', 'role', 'dtype', 'device', 'requires_grad', 'defined'], gt.map((g) => ['t' + g[1], g[2], g[3], g[4], String(g[5]), String(g[6])])));
      if (gs.length) parts.push(table(['op', 'argument', 'value'], gs.map((g) => ['op ' + g[1], g[2], g[3]])));
      if (gz.length) parts.push(el('div', {}, 'size inputs:'), table(['of', 'what', 'dim', { text: 'value', num: 1 }],
        gz.map((g) => [g[1] >= 0 ? 't' + g[1] + ' (' + g[2] + ')' : 'op ' + g[4], g[3], g[5], g[6]])));
    }
    const ca = call.compiled_autograd;
    const can = (ca.nodes || []).filter((c) => c.node === id);
    for (const c of can) {
      parts.push(el('h4', {}, 'compiled autograd key'), el('div', {}, 'NodeCall ' + c.id + ', key ' + c.key_size + ' bytes, lifts ' +
        c.tensors + ' tensors, ' + c.scalars + ' scalars, ' + c.hooks + ' Python objects; size inputs ' +
        (c.sizes.length ? c.sizes.map((s) => s[0] + (s[1] ? ' (static)' : '')).join(', ') : 'none')));
    }
    if (D.diff) {
      const mine = D.diff.differences.filter((d) => {
        const at = diffAt(d, state.trace);
        return at.call === call.index && at.node === id;
      });
      if (mine.length) parts.push(el('h4', {}, 'differences'), ...mine.map((d) => el('div', {}, d.group + ': ' + d.text)));
    }
    details.replaceChildren(...parts);
  }
  function ordinal(i) { return '#' + (i + 1); }

  // --- slowest ---------------------------------------------------------------
  const slowSec = section('slowest', 'Slowest nodes and ops',
    'Where this call spent its time, as the recorder timed it (a node\'s time includes its ops). Start with the ' +
    'slowest nodes; ops summed by name show which kernels dominate. Click a row to find it in the graph.');
  const slowBody = el('div');
  slowSec.appendChild(slowBody);
  function renderSlowest() {
    const call = curCall();
    slowBody.replaceChildren();
    if (!call) return;
    const ix = index(call);
    const total = call.duration || 1;
    const nodes = [...call.nodes].filter((n) => n.exec >= 0).sort((a, b) => b.dur - a.dur).slice(0, 15);
    slowBody.appendChild(el('h4', {}, 'nodes'));
    slowBody.appendChild(table(['node', 'type', { text: 'time', num: 1 }, { text: '% of call', num: 1 }, { text: 'ops', num: 1 }],
      nodes.map((n) => [n.label + ' (' + n.id + ')', n.type, us(n.dur), (100 * n.dur / total).toFixed(1), (ix.opsOf.get(n.id) || []).length]),
      (i) => revealNode(nodes[i].id)));
    const byName = new Map();
    for (const op of call.ops) {
      const s = byName.get(op[1]) || { name: op[1], count: 0, total: 0, max: 0 };
      s.count++; s.total += op[6]; s.max = Math.max(s.max, op[6]);
      byName.set(op[1], s);
    }
    const names = [...byName.values()].sort((a, b) => b.total - a.total).slice(0, 15);
    slowBody.appendChild(el('h4', {}, 'ops by name'));
    slowBody.appendChild(table(['op', { text: 'count', num: 1 }, { text: 'total', num: 1 }, { text: 'mean', num: 1 }, { text: 'max', num: 1 }],
      names.map((s) => [s.name, s.count, us(s.total), us(s.total / s.count), us(s.max)])));
    const ops = [...call.ops].sort((a, b) => b[6] - a[6]).slice(0, 15);
    slowBody.appendChild(el('h4', {}, 'slowest ops'));
    slowBody.appendChild(table(['#', 'op', 'node', { text: 'time', num: 1 }, { text: 'inputs', mono: 1 }],
      ops.map((op) => [op[0], op[1], op[2] >= 0 && ix.node.get(op[2]) ? ix.node.get(op[2]).label + ' (' + op[2] + ')' : 'engine', us(op[6]),
        op[7].filter((a) => a[2].length === 1).map((a) => tensorText(ix, a[2][0])).join(', ')]),
      (i) => { if (ops[i][2] >= 0) revealNode(ops[i][2]); }));
  }

  // --- timeline --------------------------------------------------------------
  const timeSec = section('timeline', 'Timeline of this call',
    'Each recorded thread is a row: nodes as wide bars in the order they ran, their ops as thin bars beneath. Gaps ' +
    'are the engine\'s own work between nodes. Hover for names and times; click a node bar to select it.');
  const timeBody = el('div', { class: 'timeline' });
  timeSec.appendChild(timeBody);
  function renderTimeline() {
    const call = curCall();
    timeBody.replaceChildren();
    if (!call) return;
    const ix = index(call);
    const threads = [...new Set(call.ops.map((o) => o[4]))].sort((a, b) => a - b);
    if (!threads.length) threads.push(0);
    const threadOfNode = new Map();
    for (const op of call.ops) if (op[3] === 'node' && !threadOfNode.has(op[2])) threadOfNode.set(op[2], op[4]);
    let end = call.duration;
    for (const n of call.nodes) end = Math.max(end, n.start + n.dur);
    end = end || 1;
    const W = Math.max(600, (timeBody.clientWidth || 1000) - 2), ROW = 34, LEFT = 70;
    const canvas = el('canvas', { id: 'timeline-canvas' });
    const ratio = window.devicePixelRatio || 1;
    canvas.width = W * ratio; canvas.height = (threads.length * ROW + 24) * ratio;
    canvas.style.width = W + 'px'; canvas.style.height = threads.length * ROW + 24 + 'px';
    const c = canvas.getContext('2d');
    c.scale(ratio, ratio);
    const sx = (t) => LEFT + (t / end) * (W - LEFT - 8);
    c.font = '11px system-ui, sans-serif';
    c.fillStyle = '#5b6570';
    for (let i = 0; i <= 5; i++) { const t = end * i / 5; c.fillText(us(t), sx(t) - (i === 5 ? 40 : 0), threads.length * ROW + 16); }
    const hits = [];
    threads.forEach((th, row) => {
      const y = row * ROW + 4;
      c.fillStyle = '#5b6570';
      c.fillText('thread ' + th, 4, y + 12);
      for (const n of call.nodes) {
        if (n.exec < 0 || (threadOfNode.get(n.id) ?? threads[0]) !== th) continue;
        const x0 = sx(n.start), x1 = Math.max(x0 + 1, sx(n.start + n.dur));
        c.fillStyle = heat(ix.maxDur ? n.dur / ix.maxDur : 0);
        c.fillRect(x0, y, x1 - x0, 16);
        hits.push({ x0, x1, y0: y, y1: y + 16, text: n.label + ' (' + n.id + '): ' + us(n.dur), node: n.id });
      }
      c.fillStyle = '#4a6fa5';
      for (const op of call.ops) {
        if (op[4] !== th) continue;
        const x0 = sx(op[5]), x1 = Math.max(x0 + 1, sx(op[5] + op[6]));
        c.fillRect(x0, y + 19, x1 - x0, 8);
        hits.push({ x0, x1, y0: y + 19, y1: y + 27, text: op[1] + ' (op ' + op[0] + '): ' + us(op[6]), node: op[2] });
      }
    });
    const find = (ev) => {
      const r = canvas.getBoundingClientRect();
      const x = ev.clientX - r.left, y = ev.clientY - r.top;
      for (let i = hits.length - 1; i >= 0; i--) { const h = hits[i]; if (x >= h.x0 && x <= h.x1 && y >= h.y0 && y <= h.y1) return h; }
      return null;
    };
    canvas.addEventListener('mousemove', (ev) => { const h = find(ev); if (h) showTip(ev, h.text); else hideTip(); });
    canvas.addEventListener('mouseleave', hideTip);
    canvas.addEventListener('click', (ev) => { const h = find(ev); if (h && h.node >= 0) revealNode(h.node); });
    timeBody.appendChild(canvas);
  }

  // --- recompiles ------------------------------------------------------------
  const recSec = section('recompiles', 'Compiled autograd: compiles and recompiles',
    'How these calls would go through compiled autograd\'s cache, as `cautograd recompile` reads them: green is a ' +
    'cache hit, red a miss that compiles. Each miss lists why, node by node, with a hint; sizes that changed between ' +
    'calls become dynamic. Many red cells in a training loop are the recompiles to fix: the reasons say which input moves.');
  const recBody = el('div');
  recSec.appendChild(recBody);
  function renderRecompiles() {
    recBody.replaceChildren();
    const sim = curTrace().recompile;
    const s = sim.summary;
    recBody.appendChild(el('div', {}, plural(s.calls, 'call') + ' into one cache (' + (sim.keys === 'compiled_autograd' ? 'compiled autograd\'s own keys' : 'simulated keys') +
      ', --dynamic ' + sim.dynamic + '): ' + plural(s.compiles, 'compile') + ' (' + plural(s.recompiles, 'recompile') + '), ' +
      plural(s.hits, 'hit') + ', hit rate ' + (100 * s.hit_rate).toFixed(0) + '%; ' + plural(s.entries, 'cache entry', 'cache entries') + ', ' +
      plural(s.dynamic_sizes, 'dynamic size') + '.' +
      (sim.eager_left_out ? ' ' + plural(sim.eager_left_out, 'eager call') + ' left out: the cache is the calls that ran under compiled autograd.' : '')));
    const strip = el('div', { class: 'strip', id: 'recompile-strip' });
    sim.calls.forEach((c) => {
      const unsupported = c.reasons.length && c.reasons[0].kind === 'unsupported';
      const cell = el('div', { class: 'cell ' + (unsupported ? 'unsupported' : c.result) + (c.call === curCall().index ? ' current' : ''), title: 'call ' + c.call + ': ' + (unsupported ? 'unsupported' : c.result) + (c.entry >= 0 ? ', entry ' + c.entry : '') }, String(c.call));
      cell.addEventListener('click', () => { const i = curTrace().calls.findIndex((x) => x.index === c.call); if (i >= 0) { state.call = i; renderAll(); } });
      strip.appendChild(cell);
    });
    recBody.appendChild(strip);
    for (const c of sim.calls) {
      if (c.result === 'hit') continue;
      const box = el('div', { class: 'miss' }, el('strong', {}, 'call ' + c.call + ': ' + (c.reasons.length && c.reasons[0].kind === 'unsupported' ? 'UNSUPPORTED' : 'MISS, entry ' + c.entry) + ' (' + c.nodes + ' nodes, ' + c.sizes + ' size inputs)'));
      let lastHint = '';
      for (const r of c.reasons) {
        box.appendChild(el('div', { class: 'reason' }, (r.explains ? 'because ' : '\u2022 ') + r.text));
        if (r.hint && r.hint !== lastHint) box.appendChild(el('div', { class: 'hint' }, 'hint: ' + r.hint));
        lastHint = r.hint || '';
      }
      recBody.appendChild(box);
    }
    const dyn = [];
    for (const e of sim.entries) for (const d of e.dynamic_sizes) dyn.push(['entry ' + e.id, d.text, d.seen.join(', '), 'call ' + d.dynamic_since.call]);
    if (dyn.length) recBody.appendChild(el('h4', {}, 'sizes that went dynamic'), table(['entry', 'size', 'values seen', 'dynamic since'], dyn));
  }

  // --- diff ------------------------------------------------------------------
  function renderDiff() {
    if (!D.diff) return;
    const sec = section('diff', 'What changed: A \u2192 B',
      'The differences `cautograd diff` finds between trace A (' + D.traces[0].name + ') and B (' + D.traces[1].name + '), most ' +
      'important first: the graph\'s shape, then wrong results (numerics), then recompiles (guards), then op details and timing. ' +
      'Changed nodes carry a \u0394 on the graph of either trace; click a row to see the node in B.');
    sec.appendChild(el('div', { id: 'diff-verdict' }, D.diff.verdict));
    for (const n of D.diff.notes) sec.appendChild(el('div', { class: 'note' }, n));
    const diffs = D.diff.differences;
    sec.appendChild(table(['group', 'difference'], diffs.slice(0, 500).map((d) => [d.group, d.text]), (i) => {
      const side = diffAt(diffs[i], 1).call >= 0 ? 1 : 0;
      const { call: callIndex, node } = diffAt(diffs[i], side);
      state.trace = side;
      state.call = Math.max(0, D.traces[side].calls.findIndex((c) => c.index === callIndex));
      renderAll();
      if (node >= 0) revealNode(node);
      document.getElementById('graph').scrollIntoView();
    }));
    if (diffs.length > 500) sec.appendChild(el('div', {}, '\u2026 and ' + (diffs.length - 500) + ' more (cautograd diff lists them all).'));
    const nums = diffs.filter((d) => d.values);
    if (nums.length) {
      sec.appendChild(el('h4', {}, 'numerics'));
      sec.appendChild(table(['tensor', 'dtype', { text: 'elements', num: 1 }, { text: 'beyond tolerance', num: 1 }, { text: 'max abs', num: 1 }, { text: 'max rel', num: 1 }, 'worst (A \u2192 B)', ''],
        nums.slice(0, 200).map((d) => { const v = d.values; return [d.text.split(':')[0] + ' ' + (d.tensor || ''), v.dtype, v.numel, v.beyond, num(v.max_abs, 3), num(v.max_rel, 3), num(v.old_at_worst, 6) + ' \u2192 ' + num(v.new_at_worst, 6), d.first_divergence ? 'first divergence' : '']; })));
    }
  }

  // --- skipped and about ------------------------------------------------------
  function renderSkipped() {
    const skipped = D.traces.flatMap((t) => t.skipped.map((s) => [t.name, s.program_call, s.process, s.reason]));
    if (!skipped.length) return;
    const sec = section('skipped', 'Calls that could not be recorded',
      'The program made these backward calls and asked for them, but the recorder could not record them; the reason ' +
      'names the node and op involved. The calls after each were recorded.');
    sec.appendChild(table(['trace', 'program call', 'process', 'reason'], skipped));
  }

  function renderAll() {
    renderHeader();
    state.view = null;
    state.selected = null;
    details.replaceChildren('Click a node for its details.');
    renderGraph();
    renderSlowest();
    renderTimeline();
    renderRecompiles();
  }

  const started = performance.now();
  renderAll();
  renderDiff();
  renderSkipped();
  app.appendChild(el('footer', { class: 'explain', style: 'padding: 8px 18px' },
    'Written by ' + D.tool + ' (cautograd report). Everything on this page is in this one file; nothing is fetched.'));
  window.cautogradReport = { data: D, renderMs: performance.now() - started, readyAt: performance.now(), revealNode, setView, centerOn };
  document.body.setAttribute('data-ready', '1');
})();
