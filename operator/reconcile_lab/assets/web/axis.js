// Shared by the live page and the replay: which of the two this server serves, elements, an
// SVG time axis.
"use strict";
const MODE = fetch("/api/mode").then(r => r.json());

// Runs start() when the server serves this mode ("live" or "replay"), showing its part.
function whenMode(mode, subtitle, start) {
  MODE.then(m => {
    if (m.mode !== mode) return;
    document.getElementById(mode).hidden = false;
    document.getElementById("subtitle").textContent = subtitle;
    document.title = `reconcile-lab · ${mode}`;
    start();
  });
}
const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A big number with its name under it: desired, actual, ready.
function count(value, name, cls) {
  return el("div", {class: "count"}, el("b", {class: cls || "", text: value === null ? "?" : String(value)}),
            el("span", {text: name}));
}

function clock(t) {
  return t ? new Date(t * 1000).toLocaleTimeString([], {hour12: false}) : "--:--:--";
}

// Lanes of markers over [from, to]: lanes = [{id, label, color}], marks = [{t, lane, text, shape}].
function drawLanes(root, {from, to, lanes, marks, width = 1000, height = 110, ticks = 5, label}) {
  root.replaceChildren();
  const left = 90, top = 8, laneH = (height - top - 18) / lanes.length;
  const x = t => left + (width - left - 10) * (t - from) / Math.max(1e-9, to - from);
  lanes.forEach((lane, i) => {
    const y = top + laneH * i;
    root.append(svg("rect", {x: left, y, width: width - left - 10, height: laneH - 2,
                             fill: i % 2 ? "#f7f7f9" : "#ffffff"}));
    root.append(svg("text", {x: 4, y: y + laneH / 2 + 4, fill: lane.color}, lane.label));
  });
  for (let k = 0; k <= ticks; k++) {
    const t = from + (to - from) * k / ticks;
    root.append(svg("line", {x1: x(t), x2: x(t), y1: top, y2: height - 16, stroke: "#e3e3e8"}));
    const anchor = k === 0 ? "start" : k === ticks ? "end" : "middle";
    root.append(svg("text", {x: x(t), y: height - 4, "text-anchor": anchor}, label(t)));
  }
  for (const m of marks) {
    const i = lanes.findIndex(l => l.id === m.lane);
    if (i < 0 || m.t < from || m.t > to) continue;
    const cy = top + laneH * i + laneH / 2, cx = x(m.t), color = m.color || lanes[i].color;
    const shape = m.shape === "fault"
      ? svg("path", {d: `M${cx - 6},${cy - 7} L${cx + 6},${cy - 7} L${cx},${cy + 5} Z`, fill: color})
      : m.shape === "command"
        ? svg("path", {d: `M${cx},${cy - 7} L${cx + 6},${cy} L${cx},${cy + 7} L${cx - 6},${cy} Z`, fill: color})
        : svg("circle", {cx, cy, r: 4, fill: color});
    shape.append(svg("title", {}, m.text));
    root.append(shape);
  }
  return x;
}
