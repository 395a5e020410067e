"""A 90-minute session run from the live page, as data: what to do when, what to press on the
page, and where the room usually gets stuck.

The workshop guide's block is generated from this and from the catalogue (the exercises'
minutes, the page's buttons and the hints), by ``reconcile-lab exercise readmes``; a unit test
fails when the committed guide differs. Purely data: no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

from reconcile_lab.workshop import buttons, catalog


class Block(NamedTuple):
    start: str  # h:mm from the start of the session
    minutes: int
    exercise: str | None  # its number; None for a block of the instructor's own
    title: str  # for a block without an exercise
    show: str  # what to point at on the page


PLAN: tuple[Block, ...] = (
    Block("0:00", 5, None, "The question",
          "Open the page on the projector: both engines empty. Ask who will keep the app the "
          "way it is declared once the command has returned."),
    Block("0:05", 10, "01", "",
          "The Kubernetes card fills without anyone typing again; the Docker card fills only "
          "while the twin's command runs. The axis shows who acted when."),
    Block("0:15", 15, "03", "",
          "Press *delete a pod* and *kill a container* one after the other. Kubernetes is back "
          "at 3 ready with a new pod name; Docker stays at 2, `Exited (137)`, until *be the "
          "controller* is pressed. Then the crashes: RESTARTS goes up on both sides."),
    Block("0:30", 15, "04", "",
          "*delete the Service*: a `DriftRepaired` event lands on the axis at once. "
          "*scale the Deployment by hand*: the count dips and comes back. Ask what a hot fix "
          "with `kubectl edit` on a child would survive."),
    Block("0:45", 5, None, "Break", "Leave the page open: nothing changes while nobody acts."),
    Block("0:50", 15, "05", "",
          "*roll out v2*, then *back to v1*: one pod at a time, never fewer than 3 ready "
          "(maxUnavailable 0); the twin's rollout is whatever the person typing does."),
    Block("1:05", 10, "07", "",
          "*stop the operator*, *scale to 4 meanwhile*: the desired count moves, nothing "
          "else. *start the operator*: the change is applied, nothing was lost."),
    Block("1:15", 10, None, "Replay a run",
          "`reconcile-lab web --replay out/compare/results.json` (made before the day): "
          "scrub to the kill in *kill-one* and compare the engines' ready counts frame by "
          "frame; the markers show the commands a person had to type."),
    Block("1:25", 5, None, "Wrap-up",
          "When is one Docker host enough, and when does a control plane pay for itself?"),
)

BEGIN = ("<!-- session plan: generated from operator/reconcile_lab/workshop/session.py and "
         "catalog.py by `reconcile-lab exercise readmes`; edit it there -->")
END = "<!-- end of session plan -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rows() -> list[str]:
    lines = ["| Time | Block | On the page | Buttons | Where the room gets stuck |",
             "|---|---|---|---|---|"]
    for block in PLAN:
        if block.exercise is None:
            lines.append(f"| {block.start} ({block.minutes} min) | {block.title} | "
                         f"{_cell(block.show)} | | |")
            continue
        entry = catalog.find(block.exercise)
        pressed = ", ".join(f"*{f.label}*" for f in buttons.faults(entry.number))
        stuck = entry.hints[1] if len(entry.hints) > 1 else entry.hints[0]
        lines.append(f"| {block.start} ({block.minutes} min) | Exercise {entry.number} · "
                     f"{_cell(entry.title)} | {_cell(block.show)} | {pressed} | "
                     f"{_cell(stuck)} (`exercise hint {entry.number}`) |")
    return lines


def block() -> str:
    total = sum(b.minutes for b in PLAN)
    return "\n".join([BEGIN, f"{total} minutes, driven from the live page (`make web`).", "",
                      *rows(), END])


def with_plan(guide: str) -> str:
    """The guide with its session block regenerated."""
    if BEGIN not in guide or END not in guide:
        raise ValueError(f"the guide has no session block; fix: put the lines\n{BEGIN}\n{END}\n"
                         "where the plan belongs")
    head, rest = guide.split(BEGIN, 1)
    return head + block() + rest.split(END, 1)[1]
