"""Does the HIL report render? Opens report.html in headless Chromium (pytest-html builds its
table with JavaScript, so a text search of the file proves nothing), takes the DOM after the
scripts ran, and checks that every test of report.json has its row with its outcome and that
every runtime plot is an inline image; also saves a screenshot beside the report.

    python -m slimhar.tools.report_check [runs/hil/report]        (make hil-report-check)
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _run(exe: str, url: str, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="slimhar-chromium-") as prof:
        r = subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            f"--user-data-dir={prof}", "--virtual-time-budget=5000", *args, url],
                           capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"chromium exited {r.returncode}: {r.stderr.strip()[-800:]}")
    return r.stdout


def check(report_dir: Path) -> list[str]:
    """The problems found (empty: it renders)."""
    exe = chromium()
    if exe is None:
        return ["no Chromium (apt-get install chromium; make hil-report-check installs it)"]
    page, doc = report_dir / "report.html", report_dir / "report.json"
    if not page.is_file() or not doc.is_file():
        return [f"{report_dir}: no report.html / report.json (run make hil first)"]
    tests = json.loads(doc.read_text())["tests"]
    dom = _run(exe, page.resolve().as_uri(), "--dump-dom")
    _run(exe, page.resolve().as_uri(), f"--screenshot={report_dir.resolve() / 'report.png'}", "--window-size=1280,1600")
    problems = []
    rows = re.findall(r'<tbody class="results-table-row[^"]*"[^>]*>(.*?)</tbody>', dom, re.S)
    if not rows:
        problems.append("the results table has no rows after rendering")
    text = [html.unescape(re.sub(r"<[^>]+>", " ", r)) for r in rows]
    for t in tests:
        name = t["test"].split("::")[-1]
        mine = [x for x in text if name in x]
        if not mine:
            problems.append(f"no row for {t['test']}")
        elif t["outcome"].lower() not in mine[0].lower():
            problems.append(f"{t['test']}: row does not say {t['outcome']}")
    if 'id="device-under-test"' not in dom or "blob_sha256" not in dom:
        problems.append("no device-under-test table (board, firmware and blob identity)")
    n_plots = sum(len(v) for v in json.loads(doc.read_text()).get("plots", {}).values())
    imgs = len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom))
    if imgs < n_plots:
        problems.append(f"{n_plots} plots in the report, {imgs} inline images rendered")
    return problems


def main(argv: list[str]) -> int:
    d = Path(argv[0] if argv else "runs/hil/report")
    problems = check(d)
    if problems:
        for p in problems:
            print(f"report_check: {p}", file=sys.stderr)
        return 1
    print(f"report_check: {d / 'report.html'} renders in headless Chromium: every test's row and every plot "
          f"(screenshot {d / 'report.png'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
