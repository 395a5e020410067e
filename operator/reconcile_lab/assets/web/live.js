// The live page: draws each model the server pushes (Server-Sent Events on /events).
"use strict";
const LANES = [
  {id: "kubernetes", label: "Kubernetes", color: "#1f5fbf"},
  {id: "docker", label: "Docker", color: "#0b8a8a"},
  {id: "you", label: "you typed", color: "#7c3aed"},
];
let current = null;

function appBlock(engine, app) {
  const rows = app.instances.map(i => el("tr", {class: i.ready ? "ready" : "not-ready", "data-instance": i.name},
    el("td", {text: i.name}), el("td", {class: "state", text: i.state}),
    el("td", {text: i.ready ? "yes" : "no"}), el("td", {class: "restarts", text: String(i.restarts)}),
    el("td", {text: i.age})));
  const table = el("table", {class: "instances"},
    el("thead", {}, el("tr", {}, ...["name", engine === "docker" ? "status" : "state", "ready",
                                     "restarts", "age"].map(h => el("th", {text: h})))),
    el("tbody", {}, ...rows));
  return el("div", {class: `app health-${app.health}`, "data-app": app.name, "data-engine": engine,
                    "data-ready": String(app.ready), "data-desired": String(app.desired)},
    el("div", {class: "app-head"}, el("span", {class: "app-name", text: app.name}),
       el("span", {class: "image", text: app.image}), el("span", {class: "dim", text: app.status})),
    el("div", {class: "counts"}, count(app.desired, "desired"), count(app.actual, "actual"),
       count(app.ready, "ready", "ready")),
    app.instances.length ? table : el("div", {class: "dim", text: "no instances"}));
}

function drawEngines(model) {
  const root = document.getElementById("engines");
  root.replaceChildren(...model.engines.map(e => el("div", {class: `panel engine ${e.id}`, id: `engine-${e.id}`},
    el("h2", {text: e.title}),
    e.error ? el("div", {class: "error", text: e.error}) : null,
    ...(e.error ? [] : e.apps.length ? e.apps.map(a => appBlock(e.id, a))
                                     : [el("div", {class: "dim", text: "no apps"})]),
    el("div", {class: "note", text: e.note}))));
}

function drawEvents(model) {
  drawLanes(document.getElementById("axis"), {
    from: model.now - model.window, to: model.now, lanes: LANES,
    marks: model.events.map(e => ({t: e.t, lane: e.engine, text: `${clock(e.t)} ${e.text}`,
                                   shape: e.engine === "you" ? "command" : e.warning ? "fault" : "dot",
                                   color: e.warning ? "#c62828" : undefined})),
    label: t => clock(t)});
  document.getElementById("events").replaceChildren(...model.events.map(e =>
    el("li", {class: e.warning ? "warning" : ""}, el("span", {class: "dim", text: clock(e.t) + " "}),
       el("span", {class: `tag ${e.engine}`, text: e.engine}), e.text)));
}

async function post(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify(body)});
  if (!r.ok) alert(await r.text());
}

function drawExercise(model) {
  const ex = model.exercise;
  const choice = document.getElementById("exercise-choice");
  if (choice.options.length !== model.exercises.length) {
    choice.replaceChildren(...model.exercises.map(e => el("option", {value: e.number, text: e.number})));
    choice.onchange = () => post("/api/exercise", {exercise: choice.value});
  }
  choice.value = ex.number;
  document.getElementById("exercise-title").textContent = ex.title;
  document.getElementById("exercise-goal").textContent =
    `${ex.goal} Each button runs the command under it, as in ${ex.readme} (namespace ${ex.namespace}).`;
  const faults = document.getElementById("faults");
  const key = ex.number + ex.faults.map(f => f.command).join("|");
  if (faults.dataset.key !== key) {
    faults.dataset.key = key;
    const none = el("p", {class: "dim", text: "This exercise has no fault to press: follow its " +
                                              "README, the page shows what happens."});
    faults.replaceChildren(...(ex.faults.length ? [] : [none]), ...ex.faults.map(f => {
      const b = el("button", {class: `fault ${f.engine}`, type: "button", "data-fault": String(f.index)},
                   el("b", {text: `${f.engine === "docker" ? "Docker" : "Kubernetes"} · ${f.label}`}),
                   el("code", {text: "$ " + f.command}));
      b.onclick = () => post("/api/faults", {exercise: ex.number, fault: f.index});
      return b;
    }));
  }
  document.getElementById("runs").replaceChildren(...model.runs.map(r =>
    el("li", {class: `run run-${r.state}`, "data-run": String(r.id), "data-state": r.state},
       el("span", {text: `${clock(r.t)} ${r.state}${r.exit === null ? "" : " (exit " + r.exit + ")"}: `}),
       el("code", {text: "$ " + r.command}),
       r.output ? el("pre", {text: r.output}) : null)));
}

function draw(model) {
  current = model;
  drawEngines(model);
  drawEvents(model);
  drawExercise(model);
  document.body.dataset.updated = String(model.now);
}

function connect() {
  const badge = document.getElementById("connection");
  badge.hidden = false;
  const source = new EventSource("/events");
  source.addEventListener("model", e => {
    badge.className = "badge live";
    badge.textContent = "live · " + clock(JSON.parse(e.data).now);
    draw(JSON.parse(e.data));
  });
  source.onerror = () => { badge.className = "badge lost"; badge.textContent = "connection lost, retrying…"; };
}
whenMode("live", "live: one WebApp, two engines", connect);
