(() => {
  "use strict";
  // The learned graph of a taskgraph run: the task map (tasks placed and coloured by their relations), a
  // panel per task (routing heatmap, gates, related tasks, provenance), two tasks side by side, a skill's
  // panel. Reads the record of taskgraph/export/view_model.py; writes nothing anywhere.
  const root = document.getElementById("taskgraph");
  const errors = [];
  window.addEventListener("error", (event) => {
    errors.push(String(event.message));
    root.setAttribute("data-errors", errors.join("\n"));
  });
  const data = JSON.parse(document.getElementById("taskgraph-data").textContent);
  const svg = document.getElementById("map");
  const NS = svg.namespaceURI;
  const panel = document.getElementById("panel");
  const tasks = data.tasks;
  const T = tasks.length;
  const rel = data.relations; // [a, b, weight, rank, declared, extra], strongest first
  const VIEW = 1000; // positions in [0, 1] are drawn in a VIEW x VIEW box
  const LABEL_DENSITY = 70; // labels show when fewer than this many tasks fill the visible area
  const TOP_RELATED = 8;
  const TOP_USERS = 5;
  const radius = Math.min(12, Math.max(3, 140 / Math.sqrt(Math.max(T, 1))));

  // ---------------------------------------------------------------- small helpers
  const el = (tag, attrs = {}, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const sv = (tag, attrs = {}) => {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  };
  const fmt = (v) => (typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toPrecision(3))) : String(v));
  const weights = rel.map((r) => r[2]);
  const wLo = weights.length ? Math.min(...weights) : 0;
  const wHi = weights.length ? Math.max(...weights) : 1;
  const scaled = (w) => (wHi > wLo ? (w - wLo) / (wHi - wLo) : 1);
  const related = tasks.map(() => []); // per task: relation indices, strongest first
  rel.forEach((r, e) => {
    related[r[0]].push(e);
    related[r[1]].push(e);
  });
  const other = (e, t) => (rel[e][0] === t ? rel[e][1] : rel[e][0]);
  const colorOf = (t) => data.communities[tasks[t].community].color;
  const provenance = (t) => String(tasks[t].attrs.provenance || "");

  // ---------------------------------------------------------------- header: meta, controls, legend
  const meta = data.meta;
  const parts = [`${T} tasks`, `${rel.length} relations`];
  if (meta.router) parts.unshift(`router ${meta.router}`);
  if (meta.relations) parts.push(`relations ${meta.relations}`);
  if (data.modules.length) {
    const k = data.modules[0].skills.length;
    parts.push(`${data.modules.length} adapted modules \u00d7 ${k} skills \u00d7 ${data.heads} head${data.heads > 1 ? "s" : ""}`);
  }
  document.getElementById("meta").textContent = parts.join(" \u00b7 ");
  const topk = document.getElementById("topk");
  const minw = document.getElementById("minw");
  topk.max = String(Math.max(data.maxRank, 1));
  topk.value = String(data.topK);
  minw.value = "0";
  const names = document.getElementById("task-names");
  const sorted = tasks.map((t, i) => i).sort((a, b) => (tasks[a].name < tasks[b].name ? -1 : 1));
  names.replaceChildren(...sorted.map((i) => el("option", { value: tasks[i].name })));

  const legend = document.getElementById("legend");
  let community = -1;
  function drawLegend() {
    const items = [];
    const shownCommunities = data.communities.filter((c) => c.size > 1).slice(0, 12);
    shownCommunities.forEach((c, i) => {
      const item = el("span", { class: "item" + (community === i ? " on" : ""), "data-community": String(i) });
      const sw = el("i", { class: "swatch" });
      sw.style.background = c.color;
      item.append(sw, `community ${i + 1} (${c.size})`);
      item.addEventListener("click", () => {
        community = community === i ? -1 : i;
        drawLegend();
        paint();
      });
      items.push(item);
    });
    const more = data.communities.filter((c) => c.size > 1).length - shownCommunities.length;
    if (more > 0) items.push(el("span", { class: "item key" }, `${more} more communities (colours repeat)`));
    const alone = data.communities.filter((c) => c.size === 1);
    if (alone.length) {
      const sw = el("i", { class: "swatch" });
      sw.style.background = alone[0].color;
      const item = el("span", { class: "item key" });
      item.append(sw, `${alone.length} task${alone.length > 1 ? "s" : ""} in no community`);
      items.push(item);
    }
    if (rel.length) {
      const line = el("span", { class: "item key" });
      line.append(el("i", { class: "swatch line" }), `relation: wider and darker = stronger (${fmt(wLo)} \u2026 ${fmt(wHi)})`);
      items.push(line);
      if (rel.some((r) => r[4])) {
        const dashed = el("span", { class: "item key" });
        dashed.append(el("i", { class: "swatch line declared" }), "declared");
        items.push(dashed);
      }
    }
    for (const [kind, cls] of [["few-shot", "ring-few"], ["zero-shot", "ring-zero"], ["attached", "ring-attached"]]) {
      const n = tasks.filter((t, i) => provenance(i) === kind).length;
      if (n) {
        const item = el("span", { class: "item key" });
        item.append(el("i", { class: "swatch " + cls }), `${kind} (${n})`);
        items.push(item);
      }
    }
    legend.replaceChildren(...items);
  }

  // ---------------------------------------------------------------- the map
  const edgeLayer = sv("g", { class: "edges" });
  const nodeLayer = sv("g", { class: "nodes" });
  const labelLayer = sv("g", { class: "labels" });
  svg.append(edgeLayer, nodeLayer, labelLayer);
  const nodeEls = [];
  const labelEls = [];
  const nodesFragment = document.createDocumentFragment();
  const labelsFragment = document.createDocumentFragment();
  tasks.forEach((task, i) => {
    const x = task.x * VIEW;
    const y = task.y * VIEW;
    const g = sv("g", { class: "node " + provenance(i), "data-t": String(i), tabindex: "0", transform: `translate(${x} ${y})` });
    const circle = sv("circle", { r: String(radius), fill: colorOf(i) });
    const title = sv("title");
    title.textContent = task.name + (provenance(i) && provenance(i) !== "trained" ? ` (${provenance(i)})` : "");
    g.append(circle, title);
    nodesFragment.append(g);
    nodeEls.push(g);
    const label = sv("text", { class: "label", x: String(x), y: String(y - radius - 3) });
    label.textContent = task.name;
    labelsFragment.append(label);
    labelEls.push(label);
  });
  nodeLayer.append(nodesFragment);
  labelLayer.append(labelsFragment);

  let shownEdges = [];
  function drawEdges() {
    const k = Number(topk.value);
    const cut = wLo + (wHi - wLo) * (Number(minw.value) / 1000);
    document.getElementById("topk-out").textContent = String(k);
    document.getElementById("minw-out").textContent = fmt(cut);
    shownEdges = [];
    const fragment = document.createDocumentFragment();
    for (let e = rel.length - 1; e >= 0; e--) { // weakest first: the strongest are drawn on top
      const [a, b, w, rank, declared] = rel[e];
      if (rank >= k || w < cut) continue;
      shownEdges.push(e);
      const s = scaled(w);
      const same = tasks[a].community === tasks[b].community && data.communities[tasks[a].community].size > 1;
      const line = sv("line", {
        class: "edge" + (declared ? " declared" : ""), "data-e": String(e),
        x1: String(tasks[a].x * VIEW), y1: String(tasks[a].y * VIEW), x2: String(tasks[b].x * VIEW), y2: String(tasks[b].y * VIEW),
        stroke: same ? colorOf(a) : "#8a8a8a", "stroke-width": (0.6 + 4.4 * s).toFixed(2), "stroke-opacity": (0.15 + 0.7 * s).toFixed(2),
      });
      const title = sv("title");
      title.textContent = `${tasks[a].name} \u2014 ${tasks[b].name}: ${fmt(w)}` + (declared ? " (declared)" : "");
      line.append(title);
      fragment.append(line);
    }
    edgeLayer.replaceChildren(fragment);
    document.getElementById("shown").textContent = `${shownEdges.length} of ${rel.length} relations shown`;
    root.setAttribute("data-shown-edges", String(shownEdges.length));
    paint();
  }

  // ---------------------------------------------------------------- zoom and pan
  const fit = (() => {
    if (!T) return { x: 0, y: 0, w: VIEW, h: VIEW };
    const xs = tasks.map((t) => t.x * VIEW);
    const ys = tasks.map((t) => t.y * VIEW);
    const pad = radius * 2 + 24;
    const x0 = Math.min(...xs) - pad;
    const y0 = Math.min(...ys) - pad;
    return { x: x0, y: y0, w: Math.max(...xs) + pad - x0, h: Math.max(...ys) + pad - y0 };
  })();
  let view = { ...fit };
  function setView(next) {
    view = next;
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
    const zoom = fit.w / view.w;
    svg.classList.toggle("labels", T / (zoom * zoom) <= LABEL_DENSITY);
    labelLayer.style.fontSize = `${(Math.max(fit.w, fit.h) / 80 / zoom).toFixed(2)}px`;
  }
  function toView(event) {
    const box = svg.getBoundingClientRect();
    const scale = Math.max(view.w / box.width, view.h / box.height); // preserveAspectRatio: meet
    const cx = view.x + view.w / 2 + (event.clientX - box.left - box.width / 2) * scale;
    const cy = view.y + view.h / 2 + (event.clientY - box.top - box.height / 2) * scale;
    return [cx, cy, scale];
  }
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [cx, cy] = toView(event);
    const f = Math.exp(Math.max(-1, Math.min(1, event.deltaY * 0.0015)));
    const w = Math.min(fit.w * 4, Math.max(fit.w / 60, view.w * f));
    const s = w / view.w;
    setView({ x: cx - (cx - view.x) * s, y: cy - (cy - view.y) * s, w, h: view.h * s });
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY, view: { ...view }, moved: false, id: event.pointerId };
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    if (!drag.moved) {
      drag.moved = true;
      svg.setPointerCapture(drag.id);
      svg.classList.add("dragging");
    }
    const [, , scale] = toView(event);
    setView({ ...drag.view, x: drag.view.x - dx * scale, y: drag.view.y - dy * scale });
  });
  const endDrag = () => {
    svg.classList.remove("dragging");
    setTimeout(() => { drag = null; }, 0);
  };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);
  function centre(t) {
    const w = Math.min(view.w, fit.w / Math.max(1, Math.sqrt(T / LABEL_DENSITY)));
    const h = view.h * (w / view.w);
    setView({ x: tasks[t].x * VIEW - w / 2, y: tasks[t].y * VIEW - h / 2, w, h });
  }

  // ---------------------------------------------------------------- selection and highlighting
  let selA = -1;
  let selB = -1;
  let skill = null; // {k} while a skill's panel is open
  let comparing = false;
  function paint() {
    const keep = new Set();
    const hot = new Set();
    for (const t of [selA, selB]) {
      if (t < 0) continue;
      keep.add(t);
      for (const e of shownEdges) {
        if (rel[e][0] === t || rel[e][1] === t) {
          hot.add(e);
          keep.add(other(e, t));
        }
      }
      for (const e of related[t].slice(0, TOP_RELATED)) keep.add(other(e, t));
    }
    if (skill !== null) for (const t of skillUsers(skill.k)) keep.add(t);
    const filtering = keep.size > 0 || community >= 0;
    const inCommunity = (t) => community < 0 || tasks[t].community === community;
    nodeEls.forEach((g, t) => {
      const dim = filtering && !(keep.size ? keep.has(t) && inCommunity(t) : inCommunity(t));
      g.classList.toggle("dim", dim);
      g.classList.toggle("sel", t === selA);
      g.classList.toggle("sel-b", t === selB);
      labelEls[t].classList.toggle("dim", dim);
      labelEls[t].classList.toggle("on", t === selA || t === selB);
    });
    for (const line of edgeLayer.children) {
      const e = Number(line.dataset.e);
      const [a, b] = rel[e];
      line.classList.toggle("hot", hot.has(e));
      line.classList.toggle("dim", filtering && !hot.has(e) && !(keep.size === 0 && inCommunity(a) && inCommunity(b)));
    }
  }
  function select(t, second) {
    skill = null;
    if (t < 0) {
      selA = selB = -1;
    } else if (second || comparing) {
      if (t !== selA) selB = t;
      comparing = false;
    } else {
      selA = t;
      selB = -1;
    }
    paint();
    showPanel();
  }
  nodeLayer.addEventListener("click", (event) => {
    const g = event.target.closest(".node");
    if (!g || (drag && drag.moved)) return;
    event.stopPropagation();
    select(Number(g.dataset.t), event.shiftKey);
  });
  nodeLayer.addEventListener("keydown", (event) => {
    const g = event.target.closest(".node");
    if (g && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      select(Number(g.dataset.t), event.shiftKey);
    }
  });
  svg.addEventListener("click", (event) => {
    if (event.target.closest(".node") || (drag && drag.moved)) return;
    select(-1, false);
  });

  // ---------------------------------------------------------------- the panel
  const heatColor = (w) => {
    const s = Math.sqrt(Math.max(0, Math.min(1, w))); // small weights stay visible
    const mix = (a, b) => Math.round(a + (b - a) * s);
    return `rgb(${mix(255, 217)}, ${mix(255, 72)}, ${mix(255, 1)})`;
  };
  const textOn = (w) => (Math.sqrt(w) > 0.6 ? "#fff" : "#222");
  const skillCount = Math.max(0, ...data.modules.map((mod) => mod.skills.length));
  const skillName = (k) => {
    const s = data.modules[0] && data.modules[0].skills[k];
    return "s" + (s && Number.isInteger(s.attrs.skill) ? s.attrs.skill : k);
  };
  const shortName = (m) => {
    const { name, block } = data.modules[m];
    return block && name.startsWith(block + ".") ? name.slice(block.length + 1) : name;
  };
  const meanHeads = (t, m) => {
    const rows = data.routing[t][m];
    return rows[0].map((_, k) => rows.reduce((sum, row) => sum + row[k], 0) / rows.length);
  };
  function taskButton(t) {
    const b = el("button", { class: "name", title: tasks[t].name }, tasks[t].name);
    b.addEventListener("click", () => {
      select(t, false);
      centre(t);
    });
    return b;
  }
  function barRow(t, w, max) {
    const row = el("div", { class: "bar-row" });
    const bar = el("span", { class: "bar" });
    bar.style.width = `${(8 * w) / Math.max(max, 1e-9)}rem`;
    row.append(taskButton(t), bar, el("span", { class: "num" }, fmt(w)));
    return row;
  }
  function heatmap(t, head) {
    const table = el("table", { class: "heat" });
    const K = skillCount;
    table.append(el("caption", {}, head < 0 ? (data.heads > 1 ? "mean over heads" : "") : `head ${head}`));
    const top = table.insertRow();
    top.append(el("th", {}, "module"));
    for (let k = 0; k < K; k++) {
      const th = el("th", { class: "skill", "data-k": String(k), title: "which tasks use this skill most" }, skillName(k));
      th.addEventListener("click", () => showSkill(k));
      top.append(th);
    }
    if (data.gates) top.append(el("th", { title: "gate: is this module's adapter on for the task" }, "gate"));
    let block = null;
    data.modules.forEach((mod, m) => {
      if (mod.block && mod.block !== block) {
        block = mod.block;
        const row = table.insertRow();
        row.append(el("th", { class: "block", colspan: String(K + 1 + (data.gates ? 1 : 0)) }, block));
      }
      const gate = data.gates ? data.gates[t][m] : 1;
      const row = table.insertRow();
      if (gate <= 0) row.classList.add("closed");
      row.append(el("th", { class: "module", title: mod.name }, shortName(m)));
      const values = head < 0 ? meanHeads(t, m) : data.routing[t][m][head];
      values.forEach((w, k) => {
        const td = el("td", { class: "w", title: `${mod.name}, skill ${skillName(k)}: ${fmt(w)}` }, K <= 12 ? w.toFixed(2) : "");
        td.style.background = heatColor(w);
        td.style.color = textOn(w);
        td.addEventListener("click", () => showSkill(k));
        row.append(td);
      });
      if (data.gates) row.append(el("td", { class: "gate" }, fmt(gate)));
    });
    return table;
  }
  function taskColumn(t) {
    const col = el("div", { class: "col", "data-task": tasks[t].name });
    const h2 = el("h2", {}, tasks[t].name);
    const kind = provenance(t);
    if (kind) {
      const attrs = tasks[t].attrs;
      let text = kind;
      if (attrs.adapt_mode && attrs.adapt_mode !== kind) text += ` (${attrs.adapt_mode})`;
      if (Number.isInteger(attrs.shots)) text += `, ${attrs.shots} shots`;
      h2.append(el("span", { class: "badge " + kind }, text));
    }
    col.append(h2);
    const note = el("p", { class: "note" });
    const swatch = el("i", { class: "swatch" });
    swatch.style.background = colorOf(t);
    note.append(swatch, ` community ${tasks[t].community + 1} of ${data.communities.length}`);
    col.append(note);
    col.append(el("h3", {}, "Most related tasks"));
    const top = related[t].slice(0, TOP_RELATED);
    if (!top.length) col.append(el("p", { class: "note" }, "no relation to another task"));
    const max = top.length ? rel[top[0]][2] : 1;
    for (const e of top) col.append(barRow(other(e, t), rel[e][2], max));
    if (data.routing && data.modules.length) {
      col.append(el("h3", {}, "Routing: skill weights per adapted module" + (data.gates ? ", and its gate" : "")));
      col.append(heatmap(t, -1));
      if (data.heads > 1) for (let h = 0; h < data.heads; h++) col.append(heatmap(t, h));
      col.append(el("p", { class: "note" }, "Click a skill (column) to see which tasks use it most."));
    }
    col.append(el("h3", {}, "Attributes"));
    const table = el("table", { class: "attrs" });
    for (const [k, v] of Object.entries(tasks[t].attrs)) {
      const row = table.insertRow();
      row.append(el("th", {}, k), el("td", {}, fmt(v)));
    }
    col.append(table);
    return col;
  }
  function toolbar() {
    const bar = el("div", { class: "toolbar" });
    const compare = el("button", { id: "compare" }, comparing ? "click a task to compare\u2026" : "compare with another task");
    compare.addEventListener("click", () => {
      comparing = !comparing;
      showPanel();
    });
    const close = el("button", { id: "close" }, "close");
    close.addEventListener("click", () => select(-1, false));
    bar.append(compare, " ", close);
    return bar;
  }
  function showPanel() {
    if (selA < 0) {
      panel.hidden = true;
      panel.replaceChildren();
      return;
    }
    panel.hidden = false;
    const cols = el("div", { class: "cols" });
    cols.append(taskColumn(selA));
    if (selB >= 0) cols.append(taskColumn(selB));
    panel.classList.toggle("two", selB >= 0);
    panel.replaceChildren(toolbar(), cols);
  }
  // [[weight, task]] of skill k in module m (mean over heads), heaviest first
  const usersOf = (k, m) => tasks.map((_, t) => [meanHeads(t, m)[k] ?? 0, t]).sort((a, b) => b[0] - a[0]);
  function skillUsers(k) {
    const best = new Set();
    if (!data.routing) return best;
    data.modules.forEach((_, m) => {
      for (const [, t] of usersOf(k, m).slice(0, TOP_USERS)) best.add(t);
    });
    return best;
  }
  function showSkill(k) {
    skill = { k };
    selA = selB = -1;
    paint();
    panel.hidden = false;
    panel.classList.remove("two");
    const col = el("div", { class: "col", "data-skill": String(k) });
    col.append(el("h2", {}, `skill ${skillName(k)}`));
    col.append(el("p", { class: "note" }, `The tasks that weigh skill ${skillName(k)} most in each adapted module (mean over heads).`));
    let block = null;
    data.modules.forEach((mod, m) => {
      if (mod.block && mod.block !== block) {
        block = mod.block;
        col.append(el("h3", {}, block));
      }
      const use = usersOf(k, m);
      const mean = use.reduce((s, u) => s + u[0], 0) / Math.max(use.length, 1);
      const head = el("p", { class: "note", title: mod.name }, `${shortName(m)} \u2014 mean over tasks ${fmt(mean)}`);
      col.append(head);
      for (const [w, t] of use.slice(0, TOP_USERS)) col.append(barRow(t, w, 1));
    });
    const close = el("button", { id: "close" }, "close");
    close.addEventListener("click", () => select(-1, false));
    panel.replaceChildren(close, col);
  }

  // ---------------------------------------------------------------- search, controls, start
  const search = document.getElementById("search");
  function find(query) {
    const q = query.trim().toLowerCase();
    if (!q) return -1;
    const exact = tasks.findIndex((t) => t.name.toLowerCase() === q);
    return exact >= 0 ? exact : tasks.findIndex((t) => t.name.toLowerCase().includes(q));
  }
  function go() {
    const t = find(search.value);
    search.classList.toggle("miss", t < 0 && search.value.trim() !== "");
    if (t >= 0) {
      select(t, false);
      centre(t);
    }
  }
  search.addEventListener("change", go);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") go();
  });
  topk.addEventListener("input", drawEdges);
  minw.addEventListener("input", drawEdges);
  document.getElementById("reset").addEventListener("click", () => setView({ ...fit }));

  drawLegend();
  setView({ ...fit });
  drawEdges();
  const hash = new URLSearchParams(location.hash.slice(1));
  const first = find(hash.get("task") || "");
  if (first >= 0) {
    select(first, false);
    const second = find(hash.get("compare") || "");
    if (second >= 0) select(second, true);
  } else if (hash.has("skill") && data.routing && data.modules.length) {
    showSkill(Math.max(0, Math.min(skillCount - 1, Number(hash.get("skill")) || 0)));
  }
  const drawn = nodeEls.filter((g) => {
    const box = g.getBBox();
    return box.width > 0 && box.height > 0;
  }).length;
  root.setAttribute("data-rendered", String(drawn));
  root.setAttribute("data-ready-ms", performance.now().toFixed(1));
  requestAnimationFrame(() => setTimeout(() => root.setAttribute("data-painted-ms", performance.now().toFixed(1)), 0));
  window.taskgraphView = { select, showSkill, setView, find, get view() { return { ...view }; } };
})();
