import json, sys
for f in sys.argv[1:]:
    d = json.load(open(f))
    for name, r in d["results"].items():
        if "scores" not in r:
            continue
        o, a = r["scores"]["tvae"], r["scores"]["sdv_tvae"]
        c = r["comparisons"]["tvae"]
        met = sum(c["targets"].values())
        print(f"| {name} | {o['fit_seconds']:.1f} / {a['fit_seconds']:.1f} ({c['fit_ratio']:.2f}x); CPU {o['fit_cpu_seconds']:.1f} / {a['fit_cpu_seconds']:.1f} ({c['fit_cpu_ratio']:.2f}x) "
              f"| {o['quality_overall']:.4f} / {a['quality_overall']:.4f} | {o['detection_auc']:.3f} / {a['detection_auc']:.3f} "
              f"| {o['tstr_over_trtr']:.3f} / {a['tstr_over_trtr']:.3f} | {met}/4 {'' if met == 4 else [k for k, v in c['targets'].items() if not v]} |")
