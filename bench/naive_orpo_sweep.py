"""A sweep as a user would write it without sweeper: for each parameter set, build the tokenizer, the data, the model,
the LoRA adapters and TRL's ORPOTrainer from scratch, train, keep the metrics. The baseline of
bench/sweep_overhead.py, which writes the plan this script reads.

    .venv/bin/python bench/naive_orpo_sweep.py PLAN.json --out RESULTS.jsonl             # one Python loop
    .venv/bin/python bench/naive_orpo_sweep.py PLAN.json --out RESULTS.jsonl --index 2   # trial 2 only

The ORPOConfig is written out in full, as sweeper's is, so that both train identically (same losses to the last
digit): TRL's defaults of bf16 and gradient checkpointing on would otherwise make the naive sweep do other work.

PLAN.json: {"model": folder, "train": jsonl, "eval": jsonl, "trials": [{hyperparameters}, ...]}. Each trial
appends one JSON line to RESULTS.jsonl: its train runtime, final eval metrics and the seconds this process spent
on it. Without --index, a last line gives the loop's time (all trials, process start-up excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch  # noqa: E402
from datasets import load_dataset  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl.experimental.orpo import ORPOConfig, ORPOTrainer  # noqa: E402


def orpo_arguments(hp: dict, output_dir: str) -> ORPOConfig:
    return ORPOConfig(
        output_dir=output_dir,
        learning_rate=hp["learning_rate"],
        per_device_train_batch_size=hp["per_device_train_batch_size"],
        gradient_accumulation_steps=hp["gradient_accumulation_steps"],
        per_device_eval_batch_size=hp["per_device_eval_batch_size"],
        weight_decay=hp["weight_decay"],
        beta=hp["beta"],
        max_steps=hp["max_steps"],
        max_length=hp["max_length"],
        lr_scheduler_type=hp["lr_scheduler_type"],
        warmup_steps=hp["warmup_steps"],
        max_grad_norm=hp["max_grad_norm"],
        optim=hp["optim"],
        gradient_checkpointing=hp["gradient_checkpointing"],  # TRL's default is on
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),  # TRL's default is on, even on a CPU
        logging_steps=hp["logging_steps"],
        eval_strategy="steps",
        eval_steps=hp["eval_steps"],
        eval_on_start=True,
        save_strategy="no",
        report_to=[],
        seed=hp["seed"],
        data_seed=hp["seed"],
        disable_dropout=False,  # keep the LoRA dropout being swept
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )


def run_one(plan: dict, hp: dict) -> dict:
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(plan["model"])
    data = load_dataset("json", data_files={"train": plan["train"], "validation": plan["eval"]})
    model = AutoModelForCausalLM.from_pretrained(plan["model"], dtype=torch.float32)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=hp["r"],
        lora_alpha=hp["lora_alpha"],
        lora_dropout=hp["lora_dropout"],
        target_modules=hp["target_modules"],
        bias=hp["bias"],
    )
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = ORPOTrainer(
            model=model,
            args=orpo_arguments(hp, output_dir),
            train_dataset=data["train"],
            eval_dataset=data["validation"],
            processing_class=tokenizer,
            peft_config=lora,
        )
        output = trainer.train()
    last_eval = [log for log in trainer.state.log_history if "eval_loss" in log][-1]
    return {
        "train_runtime": output.metrics["train_runtime"],
        "eval_loss": last_eval["eval_loss"],
        "eval_nll_loss": last_eval["eval_nll_loss"],
        "trial_s": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan")
    parser.add_argument("--out", required=True)
    parser.add_argument("--index", type=int, default=None)
    args = parser.parse_args()
    with open(args.plan) as file:
        plan = json.load(file)
    indices = range(len(plan["trials"])) if args.index is None else [args.index]
    started = time.perf_counter()
    for index in indices:
        row = {"index": index, **run_one(plan, plan["trials"][index])}
        with open(args.out, "a") as file:
            file.write(json.dumps(row) + "\n")
    if args.index is None:
        with open(args.out, "a") as file:
            file.write(json.dumps({"loop_s": time.perf_counter() - started}) + "\n")


if __name__ == "__main__":
    main()
