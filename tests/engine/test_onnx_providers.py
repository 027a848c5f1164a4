"""The execution providers' session set-up, and which providers the installed ONNX Runtime has."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hypersd_desktop.core.errors import InputError
from hypersd_desktop.core.vocab import Device
from hypersd_desktop.engine.onnx import providers
from hypersd_desktop.engine.onnx.providers import CPU, CUDA, DIRECTML


def doubling_model(path):
    """y = 2x over a [batch_size, n] input with both axes free."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch_size", "n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch_size", "n"])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"])], "double", [x], [y], [two])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_directml_sessions_run_sequentially_without_memory_patterns_on_fixed_shapes():
    import onnxruntime

    options = DIRECTML.session_options({"batch_size": 2, "n": 3})
    assert options.execution_mode == onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    assert options.enable_mem_pattern is False
    assert DIRECTML.device == Device.DIRECTML and DIRECTML.ort_name == "DmlExecutionProvider"


def test_the_cpu_provider_runs_a_model_with_its_options(tmp_path):
    session = CPU.session(doubling_model(tmp_path / "double.onnx"))
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert session.run(None, {"x": np.ones((2, 3), np.float32)})[0].tolist() == [[2.0] * 3] * 2
    assert CPU.session_options().intra_op_num_threads >= 1
    # no memory pattern: ONNX Runtime would allocate the first run's pattern as a second block on the next run
    # (twice the resident memory, and a slow second image; bench/backends.py measures the two)
    assert CPU.session_options().enable_mem_pattern is False


@pytest.mark.parametrize(("set_to", "threads"), [("3", 3), ("1", 1), ("", None), ("many", None), ("0", None)])
def test_cpu_sessions_take_omp_num_threads_where_it_is_set_as_torch_does(monkeypatch, set_to, threads):
    import psutil

    monkeypatch.setenv("OMP_NUM_THREADS", set_to)
    cores = psutil.cpu_count(logical=False) or 1
    assert CPU.session_options().intra_op_num_threads == (threads or cores)


def test_fixed_shapes_pin_the_free_dimensions(tmp_path):
    fixed = providers.Provider("fixed-cpu", "CPUExecutionProvider", Device.CPU, fixed_shapes=True)
    session = fixed.session(doubling_model(tmp_path / "double.onnx"), {"batch_size": 1, "n": 4})
    assert session.get_inputs()[0].shape == [1, 4]


def test_a_provider_this_onnx_runtime_lacks_is_refused_with_what_to_do(tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    with pytest.raises(InputError, match="install the runtime variant"):
        CUDA.session(doubling_model(tmp_path / "double.onnx"))


def test_the_installed_distribution_names_its_providers_without_importing_it():
    import subprocess
    import sys

    found, version = providers.installed()
    assert version and found[-1] is CPU
    check = ("import sys; from hypersd_desktop.engine.onnx.providers import installed; installed(); "
             "print('onnxruntime' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip() == "False"
