// The replay: plays the frames of one scenario of a compare run (GET /api/replay/ID).
"use strict";
const COLORS = ["#1f5fbf", "#0b8a8a", "#b35900", "#7c3aed", "#c2185b"];
let run = null, index = 0, timer = null;

function engineCard(engine, i, frame, markers) {
  const f = frame.engines[i];
  const typed = markers.filter(m => m.engine === engine.id && m.commands.length);
  const health = f.desired === null ? "unknown" : (f.ready === run.target.replicas && f.actual === run.target.replicas) ? "ok" : "short";
  return el("div", {class: `panel engine health-${health}`, "data-engine": engine.id, "data-ready": String(f.ready),
                    style: `border-top: 4px solid ${COLORS[i % COLORS.length]}`},
    el("h2", {text: engine.title}),
    engine.error ? el("div", {class: "error", text: engine.error}) : null,
    el("div", {class: "counts"},
       count(f.desired, "desired"), count(f.actual, "actual"), count(f.ready, "ready", "ready")),
    f.requests ? el("div", {class: "served", text: `requests ${f.requests}, failed ${f.failed}` +
                            (f.version ? ` · serving ${f.version}` : "")}) : null,
    ...typed.slice(-3).map(m => el("div", {class: "typed", text: `${m.kind} at ${m.t.toFixed(1)} s: $ ${m.commands.join(" ; ")}`})),
    el("div", {class: "outcome", text: engine.outcome}));
}

function drawFrame() {
  const frame = run.frames[index];
  const seen = run.markers.filter(m => m.t <= frame.t);
  document.getElementById("clock").textContent = `t = ${frame.t.toFixed(1)} s`;
  document.getElementById("scrub").value = String(index);
  document.getElementById("replay-engines").replaceChildren(
    ...run.engines.map((e, i) => engineCard(e, i, frame, seen)));
  const root = document.getElementById("replay-axis");
  const lanes = run.engines.map((e, i) => ({id: e.id, label: e.id, color: COLORS[i % COLORS.length]}));
  const x = drawLanes(root, {from: run.start, to: run.end, lanes, height: 200, label: t => `${t.toFixed(1)} s`,
    marks: run.markers.map(m => ({t: m.t, lane: m.engine, shape: m.kind === "fault" ? "fault" : m.kind === "repair" ? "dot" : "command",
                                  color: m.kind === "fault" ? "#c62828" : undefined,
                                  text: `${m.t.toFixed(2)} s ${m.label}${m.commands.length ? ": " + m.commands.join(" ; ") : ""}`}))});
  const laneH = (200 - 8 - 18) / lanes.length, most = Math.max(1, run.target.replicas || 1);
  run.engines.forEach((e, i) => {
    const y = r => 8 + laneH * i + (laneH - 4) * (1 - r / (most + 1)) + 1;
    const points = run.frames.filter((_, k) => k <= index)
      .map(fr => `${x(fr.t)},${y(fr.engines[i].ready)}`).join(" ");
    root.append(svg("polyline", {points, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 2}));
  });
  root.append(svg("line", {x1: x(frame.t), x2: x(frame.t), y1: 4, y2: 184, stroke: "#1d1d1f", "stroke-dasharray": "3 3"}));
  document.getElementById("markers").replaceChildren(...run.markers.map(m =>
    el("li", {class: (m.kind === "fault" ? "warning " : "") + (m.t <= frame.t ? "" : "dim"), "data-kind": m.kind},
       el("span", {class: "dim", text: `${m.t.toFixed(2)} s `}), el("span", {class: "tag", text: m.engine}),
       m.label.startsWith(m.kind) ? m.label : `${m.kind}: ${m.label}`, m.commands.length ? el("code", {class: "typed", text: "  $ " + m.commands.join(" ; ")}) : null)));
  document.body.dataset.frame = String(index);
  document.body.dataset.last = String(index === run.frames.length - 1);
}

function stop() { clearInterval(timer); timer = null; document.getElementById("play").textContent = "▶ play"; }

function play() {
  if (timer) return stop();
  if (index >= run.frames.length - 1) index = 0;
  document.getElementById("play").textContent = "❚❚ pause";
  const step = run.frames.length > 1 ? run.frames[1].t - run.frames[0].t : 0.1;
  timer = setInterval(() => {
    const speed = Number(document.getElementById("speed").value);
    index = Math.min(run.frames.length - 1, index + Math.max(1, Math.round(speed * 0.1 / step)));
    drawFrame();
    if (index >= run.frames.length - 1) stop();
  }, 100);
}

async function load(id) {
  stop();
  run = await (await fetch(`/api/replay/${encodeURIComponent(id)}`)).json();
  index = 0;
  const scrub = document.getElementById("scrub");
  scrub.max = String(run.frames.length - 1);
  scrub.oninput = () => { stop(); index = Number(scrub.value); drawFrame(); };
  document.body.dataset.scenario = run.id;
  drawFrame();
}

async function start() {
  const listing = await (await fetch("/api/replay")).json();
  const m = listing.meta;
  document.getElementById("meta").hidden = false;
  document.getElementById("meta").textContent =
    `run of ${m.started || "?"} · ${m.host || ""} · Docker ${m.docker || "?"} · Kubernetes ${m.kubernetes || "?"}`;
  const choice = document.getElementById("scenario");
  choice.replaceChildren(...listing.scenarios.map(s => el("option", {value: s.id, text: `${s.id}: ${s.title}`})));
  choice.onchange = () => load(choice.value);
  document.getElementById("play").onclick = play;
  const wanted = new URLSearchParams(location.search).get("scenario");
  if (wanted) choice.value = wanted;
  await load(choice.value);
  if (new URLSearchParams(location.search).get("play") !== null) play();
}
whenMode("replay", "replay of a compare run", start);
