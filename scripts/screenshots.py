"""Writes docs/images/*.png from a real run: the dashboard's pages and every plot kind.

Starts the embedded stack in a temporary folder (auth on, one key), runs a small
benchmark (SGD vs SAM on digits, 2 seeds, sharpness measured every epoch), then
saves each plot from the API and screenshots the dashboard in headless Chromium
(`/usr/bin/chromium`, the Debian package; `bash scripts/test.sh` installs it).

    python scripts/screenshots.py [--out docs/images] [--epochs 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.browser import Stack, chromium, embedded_stack, wait_finished  # noqa: E402


def benchmark(epochs: int) -> dict:
    lr = 0.1
    return {
        "name": "sam-vs-sgd-digits",
        "tags": ["docs"],
        "base": {
            "model": {"name": "mlp", "hidden": [64]},
            "data": {"name": "digits", "batch_size": 64},
            "optimizer": {"name": "sgd", "base": {"name": "sgd", "lr": lr}},
            "training": {"epochs": epochs, "log_every_steps": 1},
            "measure": {
                "every_epochs": 1,
                "num_examples": 256,
                "sharpness": [
                    "hessian_top_eigenvalue",
                    {"name": "hessian_trace", "probes": 8},
                    {"name": "ascent_sharpness", "rho": 0.05},
                    {"name": "loss_landscape_1d", "points": 21},
                    {"name": "loss_landscape_2d", "points": 13},
                    "hessian_density",
                ],
            },
        },
        "axes": {
            "optimizer": [
                {"name": "sgd", "base": {"name": "sgd", "lr": lr}, "label": "SGD"},
                {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": lr}, "label": "SAM"},
            ]
        },
        "seeds": [0, 1],
    }


def save_plots(stack: Stack, out: Path, bench_id: str, job_id: str) -> None:
    with stack.client() as api:
        for kind in ("curves", "measures", "landscape_1d", "landscape_2d", "density"):
            r = api.get(f"/v1/jobs/{job_id}/plots/{kind}").raise_for_status()
            (out / f"plot-{kind}.png").write_bytes(r.content)
        for kind in ("comparison", "sharpness_gap"):
            r = api.get(f"/v1/benchmarks/{bench_id}/plots/{kind}").raise_for_status()
            (out / f"plot-{kind}.png").write_bytes(r.content)


def screenshots(stack: Stack, out: Path, bench_id: str, job_id: str) -> None:
    with chromium(viewport=(1360, 860)) as page:
        page.set_default_timeout(180_000)  # plots render on a busy CPU
        page.goto(f"{stack.url}/ui/login")
        page.fill("input[name=key]", stack.key)
        page.click("#login-form button:not([type=button])")
        page.wait_for_url(f"{stack.url}/ui")
        page.wait_for_selector("#jobs tbody tr")
        page.screenshot(path=str(out / "dashboard-jobs.png"))
        page.goto(f"{stack.url}/ui/jobs/{job_id}")
        page.wait_for_selector("#live:text('finished')")
        for kind in ("curves", "measures", "landscape_1d", "landscape_2d", "density"):
            page.wait_for_selector(f"[data-plot={kind}] img")
        page.screenshot(path=str(out / "dashboard-job.png"), full_page=True)
        page.goto(f"{stack.url}/ui/benchmarks/{bench_id}")
        page.wait_for_selector("#updated:text('finished')")
        page.wait_for_selector("[data-plot=comparison] img")
        page.wait_for_selector("[data-plot=sharpness_gap] img")
        page.screenshot(path=str(out / "dashboard-benchmark.png"), full_page=True)
        page.goto(f"{stack.url}/ui/results")
        page.fill("input[name=group_by]", "optimizer.name")
        page.fill("input[name=metrics]", "final_test_acc,gen_gap_acc,hessian_top_eigenvalue")
        page.click("#results-form button")
        page.wait_for_selector("#results-note:text('groups')")
        page.screenshot(path=str(out / "dashboard-results.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, embedded_stack(Path(folder)) as stack:
        with stack.client() as api:
            made = api.post("/v1/benchmarks", json=benchmark(args.epochs)).raise_for_status().json()
            print(f"benchmark {made['id']}: {made['jobs']} jobs, waiting…", flush=True)
            report = wait_finished(api, f"/v1/benchmarks/{made['id']}", timeout=1800)
        sam = next(j for j in report["job_list"] if j["label"] == "SAM" and j["seed"] == 0)
        save_plots(stack, args.out, made["id"], sam["job_id"])
        screenshots(stack, args.out, made["id"], sam["job_id"])
    for path in sorted(args.out.glob("*.png")):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
