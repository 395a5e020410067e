"""Each exercise README's header block (title, goal, difficulty, time, what it needs and
starts from), generated from the catalogue by ``reconcile-lab exercise readmes``.

Purely data: no I/O.
"""

from __future__ import annotations

from reconcile_lab.workshop.catalog import Entry

BEGIN = ("<!-- exercise header: generated from operator/reconcile_lab/workshop/catalog.py by "
         "`reconcile-lab exercise readmes`; edit it there -->")
END = "<!-- end of exercise header -->"


def needs(entry: Entry) -> str:
    return ", ".join(f"exercise {n}" for n in entry.prerequisites) or "nothing"


def header(entry: Entry) -> str:
    """The README's generated block, markers included."""
    n = entry.number
    return "\n".join([
        BEGIN,
        f"# {n} · {entry.title}",
        "",
        f"**Goal.** {entry.goal}",
        "",
        "| Difficulty | Time | Needs | Starts from |",
        "|---|---|---|---|",
        f"| {entry.difficulty.value} | {entry.minutes} minutes | {needs(entry)} | "
        f"{entry.start.describe()} |",
        "",
        f"Stuck? `reconcile-lab exercise hint {n}` shows one more hint each time "
        f"({len(entry.hints)} in all); `reconcile-lab exercise solve {n}` does the exercise for "
        f"you; `reconcile-lab exercise reset {n}` puts both engines back to where it starts.",
        END,
    ])


def with_header(readme: str, entry: Entry) -> str:
    """The README with its block replaced (a README without one: its title line replaced)."""
    block = header(entry)
    if BEGIN in readme and END in readme:
        before, rest = readme.split(BEGIN, 1)
        return before + block + rest.split(END, 1)[1]
    _title, _, body = readme.partition("\n")
    return f"{block}\n{body}"


def header_of(readme: str) -> str | None:
    """The block as it is in a README, markers included; None when it has none."""
    if BEGIN not in readme or END not in readme:
        return None
    return BEGIN + readme.split(BEGIN, 1)[1].split(END, 1)[0] + END
