"""oracle.kernels: the kernel that ran a call is read from what TF and oneDNN said (verbose
lines, error and crash text), else from TF's own decision inputs — never from a target name.
The lines below are verbatim from TF 2.21's oneDNN v3.7.3 on an AVX-512 (VNNI/BF16/FP16) CPU."""
from __future__ import annotations

import pytest

from conv3dt.oracle.kernels import KernelObservation, observe, onednn_convolutions

REORDER = ("onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:cdeba::f0 "
           "dst:f32:p:blocked:Bcdea16b::f0,,,3x4x2x2x2,0.0129395")
BWD_DATA = ("onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_strided:avx512_core,"
            "backward_data,src:f32::blocked:acdeb::f0 wei:f32:ap:blocked:Bcdea16b::f0 "
            "bia:undef::undef::: dst:f32::blocked:acdeb::f0,,alg:convolution_direct,"
            "mb1_ic4oc3_id4od2kd2sd2dd0pd0,0.02")
FWD = ("onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training,"
       "src:f32::blocked:acdeb::f0 wei:f32:ap:blocked:Acdeb16a::f0 bia:undef::undef::: "
       "dst:f32::blocked:acdeb::f0,attr-scratchpad:user,alg:convolution_direct,mb1,0.01")
STOCK_GEMM = ("onednn_verbose,v1,primitive,exec,cpu,gemm_api,,undef,src_f32::blocked:ab:f0 "
              "wei_f32::blocked:ab:f0 dst_f32::blocked:ab:f0,,,8x3:3x32,55.7212")
ONEDNN_ON = {"onednn_enabled": True, "onednn_dtypes": ["bfloat16", "float16", "float32"]}
ONEDNN_OFF = {"onednn_enabled": False, "onednn_dtypes": ["bfloat16", "float16", "float32"]}


def test_the_backward_data_convolution_names_impl_and_weight_blocking():
    text = "\n".join([REORDER, FWD, BWD_DATA])
    assert onednn_convolutions(text)[-1] == ("brgconv_strided:avx512_core", "backward_data", "Bcdea16b")
    obs = observe("tf", "grad", "float32", text, ONEDNN_ON)
    assert obs == KernelObservation("onednn", "brgconv_strided:avx512_core", "Bcdea16b", "verbose")
    assert obs.label == "onednn:brgconv_strided:avx512_core/Bcdea16b"
    assert KernelObservation.from_json(obs.to_json()) == obs


@pytest.mark.parametrize("text", [
    "{{function_node __wrapped____MklNativeConv3DBackpropInputV2_device_/job:localhost}} ...",
    "F0000 00:00:17.5 9272 mkl_conv_grad_input_ops.cc:610] Check failed: ...",
    "    @ 0x7f1847533de1  tensorflow::MklConvCustomBackpropInputOp<>::Compute()",
])
def test_onednn_named_in_an_error_or_crash(text):
    assert observe("tf", "eager", "float64", text, ONEDNN_OFF) == KernelObservation("onednn", evidence="message")


def test_stock_op_named_in_an_error_even_where_onednn_is_on():
    text = ("{{function_node __wrapped__Conv3DBackpropInputV2_device_/job:localhost}} "
            "Conv3DBackpropInputOpV2 only supports NDHWC on the CPU. [Op:Conv3DBackpropInputV2]")
    assert observe("tf", "eager", "int32", text, ONEDNN_ON).family == "stock"


def test_tf_grads_stock_conv3d_rejecting_ncdhw_is_the_stock_kernel():
    text = ("{{function_node __wrapped__Conv3D_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
            "CPU implementation of Conv3D currently only supports the NHWC tensor format. [Op:Conv3D]")
    assert observe("tf", "grad", "float16", text, ONEDNN_ON).family == "stock"


def test_a_computed_result_without_a_onednn_line_was_the_stock_kernel_where_onednn_is_on():
    """TF 2.21, AMD EPYC with AVX-512 BF16 but not FP16: oneDNN is on and registered for
    float16, yet a float16 call prints no oneDNN line and returns the stock kernel's result."""
    assert observe("tf", "eager", "float32", STOCK_GEMM, ONEDNN_ON, computed=True) == \
        KernelObservation("stock", evidence="silent")
    assert observe("tf", "eager", "float32", BWD_DATA, ONEDNN_ON, computed=True).evidence == "verbose"
    assert observe("tf", "eager", "float32", STOCK_GEMM, ONEDNN_OFF, computed=True).evidence == "registry"


@pytest.mark.parametrize("dtype,facts,family", [
    ("float32", ONEDNN_ON, "onednn"),     # e.g. an empty result: no primitive ran, the op was
    ("float64", ONEDNN_ON, "stock"),      # rewritten; float64 has no oneDNN kernel: stock
    ("float32", ONEDNN_OFF, "stock"),
    ("float32", {}, "stock"),
])
def test_without_a_word_from_tf_the_registry_and_tfs_decision_say(dtype, facts, family):
    assert observe("tf", "graph", dtype, STOCK_GEMM, facts) == KernelObservation(family, evidence="registry")


def test_the_path_decides_for_xla_and_non_tf_targets():
    assert observe("tf", "xla", "float32", BWD_DATA, ONEDNN_ON).family == "xla"
    assert [observe(k, None, "float32", BWD_DATA, ONEDNN_ON).family
            for k in ("impl", "jax", "module")] == ["impl", "jax", "external"]


@pytest.mark.parametrize("flags,takes", [
    ({"avx512f", "avx512bw", "avx512_bf16", "avx512_vnni"}, ["bfloat16", "float32"]),   # AMD EPYC (Zen 4)
    ({"avx512f", "avx512bw", "avx512_fp16", "amx_bf16"}, ["bfloat16", "float16", "float32"]),  # Sapphire Rapids
    ({"avx2", "fma"}, ["float32"]),
    ({"avx2", "avx_ne_convert"}, ["bfloat16", "float16", "float32"]),
])
def test_tfs_per_dtype_onednn_rule_by_cpu_flags(flags, takes):
    from conv3dt.oracle.tf_paths import onednn_takes
    assert [d for d in ("bfloat16", "float16", "float32") if onednn_takes(d, flags)] == takes


def test_a_gradient_with_an_empty_g_computes_nothing_so_silence_is_not_the_stock_kernel():
    """oneDNN creates no primitive for an empty g (and reports none): such a call is attributed by
    TF's registry, not taken for the stock kernel (ledger onednn-empty-batch-grad-output-accepted)."""
    from conv3dt.oracle.worker import _nonempty_call

    call = {"value": {"shape": [1, 2, 2, 2, 3]}, "filter": {"shape": [2, 2, 2, 4, 3]},
            "output_shape": [1, 4, 4, 4, 4]}
    assert _nonempty_call(call)
    assert _nonempty_call({**call, "grad_output": {"shape": [1, 4, 4, 4, 4]}})
    assert not _nonempty_call({**call, "grad_output": {"shape": [0, 4, 4, 4, 4]}})
    forward_line = ("onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,"
                    "backward_data,src_f32::blocked:acdeb::f0 wei_f32:a:blocked:Acdeb16a::f0\n")
    facts = {"onednn_enabled": True, "onednn_dtypes": ["float32"]}
    assert observe("tf", "grad-eager", "float32", forward_line, facts, computed=False,
                   operation="grad-filter").family == "onednn"
    assert observe("tf", "grad-eager", "float32", forward_line, facts, computed=True,
                   operation="grad-filter").family == "stock"
