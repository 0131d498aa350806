"""GPU benchmark: ORPO + LoRA on a randomly initialized ~0.5B Qwen2, lean forward on and off, against TRL's trainer.

Three runs at the same micro-batch, the same data, model, LoRA and ORPO arguments:
  sweeper lean    - `run_orpo` with compute.lean_orpo_forward: true (chunked logits)
  sweeper full    - `run_orpo` with TRL's full-vocabulary forward
  TRL ORPOTrainer - TRL's own ORPOTrainer, built from sweeper's model, LoRA and arguments
For each: training tokens/s (evaluation excluded), model FLOPs utilization and peak GPU memory of a training step.

    .venv/bin/python bench/gpu_orpo_memory.py                 # on the GPU (see docs/gpu.md)
    .venv/bin/python bench/gpu_orpo_memory.py --tiny          # small dims: checks the script on a CPU

Nothing is downloaded: the model is Qwen2-0.5B's architecture (151,936-token vocabulary) with random weights, the
tokenizer a byte-level Qwen2 one without merges, the data random letters, one token each, at a fixed length.
MFU = 6 x base parameters x tokens / time / peak FLOPs (the issue's definition). The base weights are frozen, so
backward computes no weight gradients for them and the work really done is nearer 4 x parameters x tokens; that
figure is printed too, as `mfu_4n`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import PrinterCallback, TrainerCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweeper.config import build_training_config  # noqa: E402
from sweeper.data import load_preference_data  # noqa: E402
from sweeper.training import release_memory, run_orpo  # noqa: E402
from sweeper.training._models import load_base_model, load_tokenizer  # noqa: E402
from sweeper.training._trl import attach_lora, orpo_arguments, to_text_pairs  # noqa: E402

QWEN2_0_5B = dict(
    vocab_size=151936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    tie_word_embeddings=True,
)
TINY = dict(
    QWEN2_0_5B,
    vocab_size=8000,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
)
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def build_model_folder(folder: Path, dims: dict) -> Path:
    """A Qwen2 with random weights and a Qwen2 tokenizer, saved like a hub model.

    The tokenizer is byte-level BPE without merges (one token per byte); the model keeps the full vocabulary, so
    the output layer and its logits are as large as Qwen2's even though the text uses a few of its ids.
    """
    if (folder / "config.json").exists():
        return folder
    from tokenizers import pre_tokenizers
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer

    byte_symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = Qwen2Tokenizer(vocab={"<|endoftext|>": 0, **{s: i + 1 for i, s in enumerate(byte_symbols)}}, merges=[])
    config = Qwen2Config(**dims, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_pairs(path: Path, n_pairs: int, sequence_tokens: int) -> Path:
    """Random letters, one token each: prompt (a quarter) + space + completion + EOS = `sequence_tokens` tokens."""
    rng = random.Random(0)
    prompt_tokens = sequence_tokens // 4
    completion_tokens = sequence_tokens - prompt_tokens - 2  # the leading space and TRL's EOS are a token each

    def letters(count: int) -> str:
        return "".join(rng.choice(LETTERS) for _ in range(count))

    with path.open("w", encoding="utf-8") as handle:
        for _ in range(n_pairs):
            row = {
                "prompt": letters(prompt_tokens),
                "chosen": " " + letters(completion_tokens),
                "rejected": " " + letters(completion_tokens),
            }
            handle.write(json.dumps(row) + "\n")
    return path


class StepMeter(TrainerCallback):
    """Per optimizer step: wall time, tokens through the model and peak memory; evaluation falls outside."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps = warmup_steps
        self.tokens = 0
        self.step_times_s: list[float] = []
        self.step_tokens: list[int] = []
        self.peak_step_bytes = 0
        self.base_parameters = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.base_parameters = sum(p.numel() for p in model.parameters() if not p.requires_grad)

        def count(module, inputs):
            if module.training:
                self.tokens += inputs[0].numel()

        model.get_input_embeddings().register_forward_pre_hook(count)

    def on_step_begin(self, args, state, control, **kwargs):
        _synchronize()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._started, self._tokens_before = time.perf_counter(), self.tokens

    def on_step_end(self, args, state, control, **kwargs):
        _synchronize()
        if state.global_step <= self.warmup_steps:
            return
        self.step_times_s.append(time.perf_counter() - self._started)
        self.step_tokens.append(self.tokens - self._tokens_before)
        if torch.cuda.is_available():
            self.peak_step_bytes = max(self.peak_step_bytes, torch.cuda.max_memory_allocated())


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@dataclass
class Row:
    run: str
    micro_batch: int
    measured_steps: int
    tokens_per_step: float
    tokens_per_s: float
    mfu_6n: float
    mfu_4n: float
    peak_step_memory_gib: float | None
    train_loss: float
    base_parameters: int


def summarize(run: str, meter: StepMeter, micro_batch: int, peak_flops: float, train_loss: float) -> Row:
    if not meter.step_times_s:
        raise SystemExit(f"{run}: no step after the warm-up was measured; raise --max-steps above --warmup-steps")
    seconds, tokens = sum(meter.step_times_s), sum(meter.step_tokens)
    tokens_per_s = tokens / seconds
    gib = meter.peak_step_bytes / 2**30 if torch.cuda.is_available() else None
    return Row(
        run=run,
        micro_batch=micro_batch,
        measured_steps=len(meter.step_times_s),
        tokens_per_step=tokens / len(meter.step_tokens),
        tokens_per_s=tokens_per_s,
        mfu_6n=6 * meter.base_parameters * tokens_per_s / peak_flops,
        mfu_4n=4 * meter.base_parameters * tokens_per_s / peak_flops,
        peak_step_memory_gib=gib,
        train_loss=train_loss,
        base_parameters=meter.base_parameters,
    )


def run_plain_trl(config, output_dir: Path, meter: StepMeter) -> float:
    """TRL's ORPOTrainer itself, with the same model, LoRA, data and arguments that sweeper would use."""
    from trl.experimental.orpo import ORPOTrainer

    data = load_preference_data(config.data)
    tokenizer = load_tokenizer(config, data)
    torch.manual_seed(config.seed)
    model = attach_lora(load_base_model(config), config)
    trainer = ORPOTrainer(
        model=model,
        args=orpo_arguments(config, output_dir),
        train_dataset=to_text_pairs(data.train, tokenizer),
        eval_dataset=to_text_pairs(data.validation, tokenizer),
        processing_class=tokenizer,
        callbacks=[meter],
    )
    trainer.remove_callback(PrinterCallback)  # quiet, like sweeper's runs; printing is not part of the work
    return trainer.train().training_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small dims and short sequences, to check on a CPU")
    parser.add_argument("--micro-batch", type=int, default=None, help="pairs per step (default 8; tiny 4)")
    parser.add_argument("--sequence-tokens", type=int, default=None, help="tokens per sequence (default 512; tiny 64)")
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps per run (default 30; tiny 6)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="steps not measured (default 5; tiny 2)")
    parser.add_argument("--logit-chunk-tokens", type=int, default=1024)
    parser.add_argument(
        "--peak-flops",
        type=float,
        default=989e12,
        help="the device's dense bf16 peak, FLOP/s (H100 SXM and H200: 989e12; H100 PCIe: 756e12)",
    )
    parser.add_argument("--runs", default="lean,full,trl", help="comma-separated subset of lean, full, trl")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/bench-gpu"))
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()

    dims = TINY if args.tiny else QWEN2_0_5B
    micro_batch = args.micro_batch or (4 if args.tiny else 8)
    sequence_tokens = args.sequence_tokens or (64 if args.tiny else 512)
    max_steps = args.max_steps or (6 if args.tiny else 30)
    warmup_steps = args.warmup_steps if args.warmup_steps is not None else (2 if args.tiny else 5)

    work = args.work_dir / ("tiny" if args.tiny else "qwen2-0.5b-random")
    work.mkdir(parents=True, exist_ok=True)
    model_folder = build_model_folder(work / "model", dims)
    n_train = micro_batch * max_steps
    pairs = write_pairs(work / "pairs.jsonl", n_train + micro_batch, sequence_tokens)

    base = {
        "model": {"name": str(model_folder)},
        "data": {"source": str(pairs), "validation_fraction": micro_batch / (n_train + micro_batch)},
        "orpo": {
            "learning_rate": 1e-4,
            "per_device_train_batch_size": micro_batch,
            "per_device_eval_batch_size": micro_batch,
            "max_steps": max_steps,
            "max_length": sequence_tokens + 8,
            "logging_steps": max_steps,
            "eval_steps": max_steps,
        },
        "lora": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"},
    }
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    shown = {key: value for key, value in dims.items() if key != "rope_parameters"}
    print(f"device: {device}; torch {torch.__version__}; model dims: {json.dumps(shown)}")
    print(f"micro-batch {micro_batch} pairs x 2 sequences x {sequence_tokens} tokens; {max_steps} steps, first "
          f"{warmup_steps} left out; peak {args.peak_flops:.3g} FLOP/s\n")

    rows = []
    for run in args.runs.split(","):
        meter = StepMeter(warmup_steps)
        lean = {"compute": {"lean_orpo_forward": True, "logit_chunk_tokens": args.logit_chunk_tokens}}
        if run == "lean":
            config = build_training_config({**base, **lean}, source="bench")
            loss = run_orpo(config, work / "out-lean", callbacks=[meter]).train_metrics["train_loss"]
            name = "sweeper lean"
        elif run == "full":
            config = build_training_config(base, source="bench")
            loss = run_orpo(config, work / "out-full", callbacks=[meter]).train_metrics["train_loss"]
            name = "sweeper full logits"
        elif run == "trl":
            loss = run_plain_trl(build_training_config(base, source="bench"), work / "out-trl", meter)
            name = "TRL ORPOTrainer"
        else:
            raise SystemExit(f"--runs: unknown run {run!r}; use lean, full and/or trl")
        rows.append(summarize(name, meter, micro_batch, args.peak_flops, loss))
        release_memory()  # collect what this run left in reference cycles: the next run's peak is its own

    print(f"{'run':<22}{'micro':>6}{'steps':>6}{'tok/step':>10}{'tokens/s':>12}{'MFU 6N':>9}{'MFU 4N':>9}"
          f"{'peak GiB':>10}{'loss':>9}")
    for row in rows:
        memory = f"{row.peak_step_memory_gib:.2f}" if row.peak_step_memory_gib is not None else "n/a"
        print(f"{row.run:<22}{row.micro_batch:>6}{row.measured_steps:>6}{row.tokens_per_step:>10.0f}"
              f"{row.tokens_per_s:>12.1f}{row.mfu_6n:>9.1%}{row.mfu_4n:>9.1%}{memory:>10}{row.train_loss:>9.4f}")
    print(f"\nbase parameters (frozen, tied embedding counted once): {rows[0].base_parameters:,}")
    by_run = {row.run: row for row in rows}
    lean_row, trl_row = by_run.get("sweeper lean"), by_run.get("TRL ORPOTrainer")
    if lean_row and trl_row and lean_row.peak_step_memory_gib and trl_row.peak_step_memory_gib:
        print(f"peak memory, lean / TRL: {lean_row.peak_step_memory_gib / trl_row.peak_step_memory_gib:.2f}x")
    if not torch.cuda.is_available():
        print("no CUDA device: memory is not measured and MFU against a GPU peak means nothing here")
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
