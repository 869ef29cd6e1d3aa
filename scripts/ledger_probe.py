"""Standalone probes of the TF behaviour behind each entry of fuzz/ledger/tf.json.

    .tox/tf212/bin/python scripts/ledger_probe.py      # any interpreter with tensorflow + numpy

Each probe makes one call with plain numpy + tensorflow (no conv3dt code) and prints one line:
the entry (or the stock-kernel comparison) and what TF did: the exception class and message, or
the result's shape, dtype, first values and non-zero count. Crash-prone probes run in their own
process (rc -11 SIGSEGV, -6 SIGABRT, -8 SIGFPE, -4 SIGILL). Used to decide which TF versions a
ledger entry lists (docs/tf-matrix.md): diff the output of two versions."""
import os, subprocess, sys, textwrap

PRE = textwrap.dedent("""
    import os, sys, numpy as np
    import tensorflow as tf
    T = tf.compat.v1.nn.conv3d_transpose
    o = np.ones
    def run(name, fn):
        try:
            r = fn(); r = np.asarray(r)
            print(f"{name}: value shape={r.shape} dtype={r.dtype} vals={r.ravel()[:6].tolist()} nonzero={int(np.count_nonzero(r))}", flush=True)
        except Exception as e:
            print(f"{name}: raised {type(e).__name__}: {str(e).splitlines()[0].split('}} ')[-1][:170] if str(e) else ''}", flush=True)
    # value and filter are the jitted function's arguments: closed-over constants would be
    # constant-folded onto the stock kernel before XLA sees them (a closure gave the stock
    # kernel's nan / SIGSEGV where XLA itself returns 0.125 / a result)
    xla = lambda f, *arrays: tf.function(f, jit_compile=True)(*[tf.constant(a) for a in arrays])
    def graph(f):
        g = tf.Graph()
        with g.as_default():
            y = f()
        with tf.compat.v1.Session(graph=g) as s:
            return s.run(y)
""")

GROUPED = {  # env onednn -> list of (name, expr)
    "0": [
        ("stock-half-rounds-products(bfloat16; correctly rounded: [-0.06640625, -0.20800781])", "T(np.random.default_rng(0).standard_normal((1,1,1,2,1)).astype(tf.bfloat16.as_numpy_dtype), np.random.default_rng(1).standard_normal((1,1,5,1,1)).astype(tf.bfloat16.as_numpy_dtype), [1,1,1,2,1], [1,1,1,1,1], 'SAME')"),
        ("stock-half-rounds-products(float16; correctly rounded: [-0.0670166, -0.20739746])", "T(np.random.default_rng(0).standard_normal((1,1,1,2,1)).astype(np.float16), np.random.default_rng(1).standard_normal((1,1,5,1,1)).astype(np.float16), [1,1,1,2,1], [1,1,1,1,1], 'SAME')"),
        ("xla-float16-rounds-products(correctly rounded: [-0.0670166, -0.20739746])", "xla(lambda a, b: T(a, b, [1,1,1,2,1], [1,1,1,1,1], 'SAME'), np.random.default_rng(0).standard_normal((1,1,1,2,1)).astype(np.float16), np.random.default_rng(1).standard_normal((1,1,5,1,1)).astype(np.float16))"),
        ("cpu-ncdhw-unsupported", "T(o((1,1,2,2,2),np.float32), o((1,1,1,1,1),np.float32), [1,1,2,2,2], [1,1,1,1,1], 'SAME', data_format='NCDHW')"),
        ("cpu-dilation-unsupported", "T(o((1,2,2,2,1),np.float32), o((2,2,2,1,1),np.float32), [1,2,2,2,1], [1,1,1,1,1], 'SAME', dilations=[1,2,2,2,1])"),
        ("cpu-cout-zero-rejected", "T(o((1,1,1,1,1),np.float32), o((1,1,1,0,1),np.float32), [1,1,1,1,0], [1,1,1,1,1], 'SAME')"),
        ("v1-input-alias-requires-value", "T(input=o((1,1,1,1,1),np.float32), filter=o((1,1,1,1,1),np.float32), output_shape=[1,1,1,1,1], strides=[1,1,1,1,1])"),
        ("v1-missing-value-typeerror", "T(filter=o((1,1,1,1,1),np.float32), output_shape=[1,1,1,1,1], strides=[1,1,1,1,1])"),
        ("kernel-invalidargument-not-valueerror(channel-in)", "T(o((1,1,1,1,2),np.float32), o((1,1,1,1,1),np.float32), [1,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("kernel-invalidargument-not-valueerror(padding)", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,1,1,1,1], [1,1,1,1,1], 'FULL')"),
        ("stock:output-shape-rank6", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,1,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("stock:output-shape-empty", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,0,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("stock:batch-channel-dilation", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,1,1,1,1], [1,1,1,1,1], 'SAME', dilations=[1,1,1,1,2])"),
        ("stock:value-rank4", "T(o((1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,1,1,1,1], [1,1,1], 'SAME')"),
        ("stock:valid-output-below-kernel", "T(o((1,1,3,3,1),np.float32), o((4,3,4,2,1),np.float32), [1,3,5,9,2], [1,4,1,2,1], 'VALID')"),
        ("xla-unimplemented-batch-channel-dilation", "xla(lambda a, b: T(a, b, [2,1,1,1,1], [2,1,1,1,1], 'SAME'), o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32))"),
        ("xla-unimplemented-negative-int-limit-dilation", "xla(lambda a, b: T(a, b, [1,1,1,1,1], [1,1,1,1,1], 'VALID', dilations=[1,-2**31,1,1,1]), o((1,1,1,1,1),np.float32), o((2,1,1,1,1),np.float32))"),
        ("xla:dilations-nonpositive", "xla(lambda a, b: T(a, b, [1,1,1,1,1], [1,1,1,1,1], 'SAME', dilations=[1,0,1,1,1]), o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32))"),
        ("xla-output-channel-unchecked(out C=3, filter Cout=2)", "xla(lambda a, b: T(a, b, [1,1,1,1,3], [1,1,1,1,1], 'SAME'), o((1,1,1,1,1),np.float32), o((1,1,1,2,1),np.float32))"),
        ("xla-output-channel-unchecked(Cin=2, filter Cout=1, out C=2; want reject)", "xla(lambda a, b: T(a, b, [1,1,1,1,2], [1,1,1,1,1], 'SAME'), o((1,1,1,1,2),np.float32), o((1,1,1,1,2),np.float32))"),
        ("numpy-dtype-promotion", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float64), [1,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("grad-zero-element-filter(conv3d, filter [1,2,3,2,0])", "tf.nn.conv3d(o((1,1,1,1,2),np.float32), o((1,2,3,2,0),np.float32), [1,1,1,1,1], 'SAME')"),
        ("cin-zero-uninitialized-output(81 elems, want 0 nonzero)", "T(o((1,2,2,2,0),np.float32), o((2,2,2,3,0),np.float32), [1,3,3,3,3], [1,1,1,1,1], 'VALID')"),
        ("cin-zero(graph)", "graph(lambda: T(tf.constant(o((1,2,2,2,0),np.float32)), tf.constant(o((2,2,2,3,0),np.float32)), [1,3,3,3,3], [1,1,1,1,1], 'VALID'))"),
        ("stock-batched-unreached-inf-tap-nan n=1 (want 0.125)", "T(np.full((1,1,1,1,1),0.25,np.float32), np.array([0.5,-np.inf],np.float32).reshape(1,1,2,1,1), [1,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("stock-batched-unreached-inf-tap-nan n=2 (want 0.125 x2)", "T(np.full((2,1,1,1,1),0.25,np.float32), np.array([0.5,-np.inf],np.float32).reshape(1,1,2,1,1), [2,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("unreached-nonfinite-input-propagates n=2 (want 1,1)", "T(np.full((2,1,1,1,1),0.5,np.float32), np.array([2.0,np.inf],np.float32).reshape(2,1,1,1,1), [2,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("stock:conv3d batch stride (tf-grad's forward op)", "tf.nn.conv3d(tf.zeros((1,1,1,1,1)), o((1,1,1,1,1),np.float32), [2,1,1,1,1], 'SAME')"),
        ("xla unreached inf tap n=2 (want 0.125 x2)", "xla(lambda a, b: T(a, b, [2,1,1,1,1], [1,1,1,1,1], 'SAME'), np.full((2,1,1,1,1),0.25,np.float32), np.array([0.5,-np.inf],np.float32).reshape(1,1,2,1,1))"),
    ],
    "1": [
        ("stock-half-rounds-products(bfloat16; correctly rounded: [-0.06640625, -0.20800781])", "T(np.random.default_rng(0).standard_normal((1,1,1,2,1)).astype(tf.bfloat16.as_numpy_dtype), np.random.default_rng(1).standard_normal((1,1,5,1,1)).astype(tf.bfloat16.as_numpy_dtype), [1,1,1,2,1], [1,1,1,1,1], 'SAME')"),
        ("stock-half-rounds-products(float16; correctly rounded: [-0.0670166, -0.20739746])", "T(np.random.default_rng(0).standard_normal((1,1,1,2,1)).astype(np.float16), np.random.default_rng(1).standard_normal((1,1,5,1,1)).astype(np.float16), [1,1,1,2,1], [1,1,1,1,1], 'SAME')"),
        ("onednn:cpu-ncdhw", "T(o((1,1,2,2,2),np.float32), o((1,1,1,1,1),np.float32), [1,1,2,2,2], [1,1,1,1,1], 'SAME', data_format='NCDHW')"),
        ("onednn:cpu-dilation", "T(o((1,2,2,2,1),np.float32), o((2,2,2,1,1),np.float32), [1,2,2,2,1], [1,1,1,1,1], 'SAME', dilations=[1,2,2,2,1])"),
        ("onednn:cout-zero", "T(o((1,1,1,1,1),np.float32), o((1,1,1,0,1),np.float32), [1,1,1,1,0], [1,1,1,1,1], 'SAME')"),
        ("onednn-abortederror-on-invalid(channel-in)", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,2),np.float32), [1,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("onednn-abortederror-on-invalid(output-batch)", "T(o((1,1,1,1,2),np.float32), o((1,2,3,2,2),np.float32), [2,1,1,1,2], [1,1,1,1,1], 'SAME')"),
        ("onednn-batch-channel-dilation-accepted", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,1,1,1,1], [1,1,1,1,1], 'SAME', dilations=[1,1,1,1,2])"),
        ("onednn-output-shape-rank-unchecked", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,1,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("onednn-empty-output-shape-accepted", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,0,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("onednn-rank4-value-accepted (want reject)", "T(o((1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,1,1,1,1], [1,1,1], 'SAME')"),
        ("onednn-valid-output-below-kernel-accepted", "T(o((1,1,3,3,1),np.float32), o((4,3,4,2,1),np.float32), [1,3,5,9,2], [1,4,1,2,1], 'VALID')"),
        ("onednn cin-zero (want 0 nonzero)", "T(o((1,2,2,2,0),np.float32), o((2,2,2,3,0),np.float32), [1,3,3,3,3], [1,1,1,1,1], 'VALID')"),
        ("onednn batched inf tap float32 n=2 (want 0.125 x2)", "T(np.full((2,1,1,1,1),0.25,np.float32), np.array([0.5,-np.inf],np.float32).reshape(1,1,2,1,1), [2,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("onednn-fallback batched inf tap float64 n=2 (want 0.125 x2)", "T(np.full((2,1,1,1,1),0.25,np.float64), np.array([0.5,-np.inf],np.float64).reshape(1,1,2,1,1), [2,1,1,1,1], [1,1,1,1,1], 'SAME')"),
        ("onednn-conv3d-unimplemented-batch-channel-strides (tf-grad's forward op)", "tf.nn.conv3d(tf.zeros((1,1,1,1,1)), o((1,1,1,1,1),np.float32), [2,1,1,1,1], 'SAME')"),
    ],
}
CRASHY = [  # (name, onednn, expr)
    ("xla-zero-size-wrong-shape(expect (1,1,3,3,1))", "0", "xla(lambda a, b: T(a, b, [1,1,3,3,1], [1,2,1,1,1], 'VALID'), o((1,0,2,2,1),np.float32), o((2,2,2,1,1),np.float32))"),
    ("xla-zero-size-wrong-shape NCDHW (expect (2,3,0,5,1))", "0", "xla(lambda a, b: T(a, b, [2,3,0,5,1], [1,1,4,3,1], 'SAME', data_format='NCDHW'), o((2,2,0,2,1)), o((5,1,4,3,2)))"),
    ("empty-value-segfault(stock eager)", "0", "T(o((1,0,2,2,1),np.float32), o((2,2,2,1,1),np.float32), [1,1,3,3,1], [1,2,1,1,1], 'VALID')"),
    ("empty-value(onednn)", "1", "T(o((1,0,2,2,1),np.float32), o((2,2,2,1,1),np.float32), [1,1,3,3,1], [1,2,1,1,1], 'VALID')"),
    ("onednn-negative-output-shape-abort", "1", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,-1,1,1,1], [1,1,1,1,1], 'SAME')"),
    ("stock negative output_shape", "0", "T(o((1,1,1,1,1),np.float32), o((1,1,1,1,1),np.float32), [1,-1,1,1,1], [1,1,1,1,1], 'SAME')"),
    ("onednn-conv3d-bf16-heap-corruption(tf-grad's forward op; aborts on most runs, not all)", "1", "tf.nn.conv3d(tf.zeros([2,7,64,1,7], tf.bfloat16), tf.constant(np.random.default_rng(1).standard_normal((1,1,4,7,1)).astype(tf.bfloat16.as_numpy_dtype)), [1,3,3,3,1], 'SAME')"),
    ("zero-size-sigfpe(xla cout=0)", "0", "xla(lambda a, b: T(a, b, [1,1,1,1,0], [1,1,1,1,1], 'SAME'), o((1,1,1,1,1),np.float32), o((1,1,1,0,1),np.float32))"),
]

def go(code, onednn):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="3")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    return p

v = subprocess.run([sys.executable, "-c", "import tensorflow as tf, numpy; print(tf.__version__, numpy.__version__)"],
                   capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")).stdout.strip()
print("TF, numpy:", v)
for onednn, probes in GROUPED.items():
    code = PRE + "\n".join(f"run({n!r}, lambda: {e})" for n, e in probes)
    p = go(code, onednn)
    print(f"--- TF_ENABLE_ONEDNN_OPTS={onednn} (rc {p.returncode})")
    print(p.stdout, end="")
    if p.returncode:  # a probe killed the process: the rest one process each
        print("STDERR tail:", p.stderr[-300:])
        done = {l.split(":")[0] for l in p.stdout.splitlines()}
        for n, e in probes:
            if n in done: continue
            q = go(PRE + f"run({n!r}, lambda: {e})", onednn)
            print(f"  [own process] rc={q.returncode} " + (q.stdout.strip() or f"{n}: no output | {q.stderr.strip().splitlines()[-1][-150:] if q.stderr.strip() else ''}"))
print("--- crash-prone probes, one process each")
for n, onednn, e in CRASHY:
    p = go(PRE + f"run({n!r}, lambda: {e})", onednn)
    tail = [l for l in p.stderr.splitlines() if "Check failed" in l or "Fatal" in l or "corruption" in l][-1:]
    print(f"[onednn={onednn}] rc={p.returncode} " + (p.stdout.strip() or f"{n}: no output") + (f" | {tail[0][-200:]}" if tail else ""))
