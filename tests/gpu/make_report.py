"""Writes report.md and report.json from what tests/gpu/check.sh left in its report folder:
gpu.csv (nvidia-smi), steps.tsv (each step's status), ctest_gpu.xml (each GPU test),
bench_cuda_gemm.json and torch.json (benchmarks). Missing pieces are reported as missing.

    python3 tests/gpu/make_report.py REPORT_DIR
"""
import json
import os
import sys
import xml.etree.ElementTree as ET


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def load_json(path):
    text = read(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        return {"error": f"unreadable: {e}"}


def tests_from_junit(path):
    """[(name, status, seconds)] with status passed, failed or skipped."""
    text = read(path)
    if text is None:
        return None
    tests = []
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        return [("(ctest_gpu.xml unreadable)", f"error: {e}", 0)]
    for case in root.iter("testcase"):
        status = case.get("status", "")
        if case.find("failure") is not None or status == "fail":
            result = "failed"
        elif case.find("skipped") is not None or status in ("notrun", "disabled"):
            result = "skipped"
        else:
            result = "passed"
        # ctest names parameterized tests "Suite.Test/param  # GetParam() = ...": keep the name.
        name = case.get("name", "?").split("  #")[0]
        tests.append((name, result, float(case.get("time", 0) or 0)))
    return tests


def main():
    d = sys.argv[1]
    gpu = (read(os.path.join(d, "gpu.csv")) or "unknown,unknown,unknown,unknown").strip()
    parts = [p.strip() for p in gpu.splitlines()[0].split(",")] + ["unknown"] * 4
    steps = []
    for line in (read(os.path.join(d, "steps.tsv")) or "").splitlines():
        f = line.split("\t")
        if len(f) == 4:
            steps.append({"step": f[0], "status": f[1], "rc": int(f[2]), "seconds": int(f[3])})
    tests = tests_from_junit(os.path.join(d, "ctest_gpu.xml"))
    bench = load_json(os.path.join(d, "bench_cuda_gemm.json"))
    torch_side = load_json(os.path.join(d, "torch.json"))

    report = {
        "gpu": {"name": parts[0], "driver": parts[1], "memory": parts[2], "compute_cap": parts[3]},
        "steps": steps,
        "tests": None if tests is None else [{"name": n, "result": r, "seconds": s} for n, r, s in tests],
        "bench_cuda_gemm": bench,
        "torch": torch_side,
    }
    if tests is not None:
        report["test_counts"] = {k: sum(1 for t in tests if t[1] == k) for k in ("passed", "failed", "skipped")}

    md = ["# CUDA check", "",
          f"GPU: {parts[0]}, driver {parts[1]}, {parts[2]}, compute capability {parts[3]}", "",
          "## Steps", "", "| step | status | rc | seconds |", "| --- | --- | --- | --- |"]
    md += [f"| {s['step']} | {s['status']} | {s['rc']} | {s['seconds']} |" for s in steps]
    md += ["", "## GPU tests (ctest -L gpu)", ""]
    if tests is None:
        md.append("no test results (ctest_gpu.xml missing: see the steps above and check.log)")
    else:
        c = report["test_counts"]
        md.append(f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")
        md += ["", "| test | result | seconds |", "| --- | --- | --- |"]
        md += [f"| {n} | {r} | {s:.2f} |" for n, r, s in tests]
    md += ["", "## GEMM: the engine's tiled kernel and cuBLAS (bench_cuda_gemm)", ""]
    torch_by_key = {}
    if isinstance(torch_side, dict):
        for m in torch_side.get("matmul", []):
            torch_by_key[(m["shape"], m["dtype"])] = m["tflops"]
    if isinstance(bench, dict) and "results" in bench:
        md += ["| shape | dtype | M | N | K | tiled TFLOP/s | cuBLAS TFLOP/s | tiled / cuBLAS | torch TFLOP/s | max rel diff |",
               "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in bench["results"]:
            t = torch_by_key.get((r["shape"], r["dtype"]))
            md.append(f"| {r['shape']} | {r['dtype']} | {r['M']} | {r['N']} | {r['K']} | "
                      f"{r['tiled_tflops']:.2f} | {r['cublas_tflops']:.2f} | "
                      f"{r['ratio_tiled_to_cublas']:.3f} | {'' if t is None else f'{t:.2f}'} | "
                      f"{r['max_rel_diff']:.2e} |")
        md += ["", f"peak GPU memory held by tensors during the benchmark: "
                   f"{bench.get('peak_bytes', 0) / 2**20:.1f} MiB"]
    else:
        md.append(f"no benchmark results ({'missing' if bench is None else bench})")
    if isinstance(torch_side, dict) and torch_side.get("sdpa"):
        md += ["", f"## PyTorch {torch_side.get('torch', '')}: scaled_dot_product_attention", "",
               "| shape | dtype | ms | TFLOP/s |", "| --- | --- | --- | --- |"]
        md += [f"| {s['shape']} | {s['dtype']} | {s['ms']:.3f} | {s['tflops']:.2f} |"
               for s in torch_side["sdpa"]]
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(d, "report.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
