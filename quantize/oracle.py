"""Host interpreters of a .tflite: TFLM (the ``tflite-micro`` package, TFLM's own reference
kernels -- THE oracle) and LiteRT (``ai-edge-litert``; reference kernels for parity checks,
its optimized kernels for fast batch accuracy)."""
from __future__ import annotations

import numpy as np


def quantize_input(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)


class Tflm:
    def __init__(self, model: bytes, arena: int | None = None):
        from tflite_micro.python.tflite_micro import runtime
        self.interp = runtime.Interpreter.from_bytes(model, arena_size=arena or max(64 * 1024, 10 * len(model)))
        d = self.interp.get_input_details(0)["quantization_parameters"]
        self.in_scale, self.in_zp = float(d["scales"][0]), int(d["zero_points"][0])

    def run(self, xq: np.ndarray) -> np.ndarray:
        """xq int8 [N, T, C, 1] (one window per invoke) -> int8 logits [N, K]."""
        outs = []
        for w in xq:
            self.interp.set_input(w[None], 0)
            self.interp.invoke()
            outs.append(self.interp.get_output(0)[0].copy())
        return np.stack(outs)


class LiteRT:
    """reference=True: LiteRT's reference kernels (BUILTIN_REF); equal to TFLM except that its
    FULLY_CONNECTED can round 1 LSB apart (measured). reference=False: its builtin optimized
    kernels without the XNNPACK delegate (XNNPACK strays further), for fast batched accuracy."""

    def __init__(self, model: bytes, reference: bool = True, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.interp = Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=kind)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.in_scale, self.in_zp = self.inp["quantization"]
        self._batch = 1
        self.interp.allocate_tensors()

    def run(self, xq: np.ndarray, chunk: int = 256) -> np.ndarray:
        """int8 [N, T, C, 1] -> int8 logits [N, K], in batches of at most `chunk` windows."""
        if len(xq) > chunk:
            return np.concatenate([self.run(xq[i:i + chunk], chunk) for i in range(0, len(xq), chunk)])
        if xq.shape[0] != self._batch:
            self.interp.resize_tensor_input(self.inp["index"], list(xq.shape))
            self.interp.allocate_tensors()
            self._batch = xq.shape[0]
        self.interp.set_tensor(self.inp["index"], xq)
        self.interp.invoke()
        return self.interp.get_tensor(self.out["index"]).copy()
