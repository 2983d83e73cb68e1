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


def rows_of(doc):
    return doc.get("results", []) if isinstance(doc, dict) else []


def targets(gemm, extra):
    """The issue's H100 targets, each as measured / needed (None where a side is missing)."""
    out = []
    for r in rows_of(gemm):
        if r.get("shape") == "square 4096" and r.get("dtype") == "bf16":
            out.append({"target": "own bf16 GEMM >= 0.7x cuBLAS at 4096^3",
                        "measured": r["ratio_tiled_to_cublas"], "needed": 0.7})
    ours = {(r.get("shape"), r.get("dtype"), r.get("pass")): r for r in rows_of(extra["bench_cuda_attention"])}
    for r in rows_of(extra["torch_attention"]):
        o = ours.get((r.get("shape"), r.get("dtype"), r.get("pass")))
        if o and o.get("ms") and r.get("ms"):
            out.append({"target": f"attention {r['shape']} {r['dtype']} {r.get('pass', '')} >= 0.8x sdpa",
                        "measured": r["ms"] / o["ms"], "needed": 0.8})
    tv = {r["dtype"]: r for r in rows_of(extra["torch_vit"])}
    for r in rows_of(extra["bench_cuda_vit"]):
        t = tv.get(r["dtype"])
        if t:
            out.append({"target": f"ViT-B/16 {r['dtype']} batch {r['batch']} >= 1.0x PyTorch eager",
                        "measured": r["images_per_s"] / t["images_per_s"], "needed": 1.0})
    e = extra["eeg_epoch"]
    if isinstance(e, dict) and "speedup" in e:
        out.append({"target": "EEGProject epoch >= 2x PyTorch eager", "measured": e["speedup"],
                    "needed": 2.0})
    return out


def table_of(doc, title):
    rows = rows_of(doc)
    if not rows:
        return [f"## {title}", "", f"no results ({'missing' if doc is None else doc.get('error', 'empty')})", ""]
    keys = list(rows[0].keys())
    md = [f"## {title}", "", "| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
    for r in rows:
        md.append("| " + " | ".join(f"{r.get(k):.4g}" if isinstance(r.get(k), float) else str(r.get(k))
                                    for k in keys) + " |")
    return md + [""]


def more_sections(extra, goals):
    md = [""]
    md += table_of(extra["bench_cuda_attention"], "Attention: ours (bench_cuda_attention)")
    md += table_of(extra["torch_attention"], "Attention: PyTorch scaled_dot_product_attention")
    md += table_of(extra["bench_cuda_conv"], "Convolution: ours and cuDNN (bench_cuda_conv)")
    md += table_of(extra["bench_cuda_vit"], "ViT-B/16 forward: ours (bench_cuda_vit)")
    bd = extra["bench_cuda_vit"].get("bf16_breakdown_ms") if isinstance(extra["bench_cuda_vit"], dict) else None
    if bd:
        md += ["Where a bf16 forward's time goes (each op alone at the model's shapes, x calls per forward):", "",
               "| op | ms per forward |", "| --- | --- |"]
        md += [f"| {op} | {ms:.2f} |" for op, ms in bd.items()] + [f"| sum | {sum(bd.values()):.2f} |", ""]
    md += table_of(extra["torch_vit"], "ViT-B/16 forward: PyTorch eager (transformers CLIP)")
    e = extra["eeg_epoch"]
    md += ["## EEGProject training epoch (bench/compare_eeg_epoch.py --device cuda)", ""]
    if isinstance(e, dict) and "speedup" in e:
        md.append(f"ours {e['shallow_s'] * 1e3:.1f} ms/epoch, PyTorch {e['torch_s'] * 1e3:.1f} ms/epoch: "
                  f"{e['speedup']:.2f}x; peak memory ours {e.get('shallow_peak_MiB')} MiB, "
                  f"PyTorch {e.get('torch_peak_MiB')} MiB")
    else:
        md.append(f"no results ({'missing' if e is None else e})")
    md += ["", "## Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
    md += [f"| {g['target']} | {g['measured']:.3f} | {'yes' if g['measured'] >= g['needed'] else 'NO'} |"
           for g in goals]
    return md


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
    extra = {name: load_json(os.path.join(d, name + ".json"))
             for name in ("bench_cuda_attention", "torch_attention", "bench_cuda_conv",
                          "bench_cuda_vit", "torch_vit", "eeg_epoch")}

    report = {
        "gpu": {"name": parts[0], "driver": parts[1], "memory": parts[2], "compute_cap": parts[3]},
        "steps": steps,
        "tests": None if tests is None else [{"name": n, "result": r, "seconds": s} for n, r, s in tests],
        "bench_cuda_gemm": bench,
        "torch": torch_side,
        **extra,
        "targets": targets(bench, extra),
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
    md += more_sections(extra, report["targets"])
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(d, "report.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
