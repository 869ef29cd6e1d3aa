"""The gate's BLAS-thread policy (``conv3dt.blas_policy``): unset variables become one thread,
a user's setting is kept, and what was decided is returned for the run record. (That a gate run
records it and its processes inherit it: ``test_cli_gate.py``.)"""
from conv3dt import blas_policy


def test_unset_variables_get_one_thread_and_the_record_says_the_gate_set_them():
    env = {"PATH": "/bin"}
    decided = blas_policy.apply(env)
    assert env == {"PATH": "/bin", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert decided["values"] == {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert decided["set_by"] == {"OPENBLAS_NUM_THREADS": "gate", "MKL_NUM_THREADS": "gate"}


def test_a_users_setting_is_kept():
    env = {"OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": ""}
    decided = blas_policy.apply(env)
    assert env["OPENBLAS_NUM_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "1"
    assert decided["set_by"] == {"OPENBLAS_NUM_THREADS": "user", "MKL_NUM_THREADS": "gate"}
