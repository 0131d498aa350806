"""Packed trials: several trials train at once on one copy of the base model, each through its own LoRA adapters.

Each trial of a pack is a whole trial: its own thread runs TRL's ORPOTrainer as a solo trial does (its data order,
optimizer, schedule, clipping, evaluation, callbacks, pruning and failure), on a stand-in model (`PackedTrialModel`)
that holds only its adapter's weights. What the pack shares is the model's forward and backward: a stand-in's forward
waits until every trial of the pack has asked for one, then one forward over all their rows runs through the frozen
base weights (one larger matrix multiply), each row through its own trial's adapters (`rows_to_adapters`); the
backward likewise sums the trials' losses into one backward pass, and each adapter gets its own trial's gradient.

Memory: a pack keeps up to `size` trials but steps at most `step_capacity` of them at once (the others wait their
turn, the longest-waiting first; a step's backward runs before the next step's forward, so at most one step's
activations are held). The capacity starts at `size` and only falls: at each shared training step's backward the
memory the step holds is measured (CUDA: the allocator's bytes in use beyond those before the forward; CPU: the
tensors the forward keeps for the backward, logits included) and the capacity is cut to what the free memory (or `memory_budget`) fits with a tenth to spare; and running out of
memory halves it before any trial's own batch is touched. An out-of-memory forward of several trials is run again
in halves, unseen by the trials; an out-of-memory backward of several trials cannot be (their losses came from the
forward) and fails them with `PackOutOfMemory`, which `run_trial` answers by training the trial again, unchanged,
in the smaller steps. Only a trial that runs out of memory stepping alone halves its micro-batch.

The trials' threads take turns: a thread runs only while it holds the pack's lock and hands it on where it waits for
the shared forward or backward, so the trainers' Python code never runs concurrently. That is what makes the
process-wide state they share safe: accelerate keeps `sync_gradients` (whether the optimizer steps) in one dict for
all trainers, which is saved before each wait and put back after it, per trial.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate.state import GradientState, PartialState
from transformers import set_seed
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..config import ConfigError, TrainingConfig
from ..faults import oom_packed_backward_limit, oom_packed_rows_limit
from ._models import is_out_of_memory, release_memory
from ._lean_logps import captured_output
from ._trl import adapter_parameters, add_adapter, check_plain_output_layer, remove_adapter, rows_to_adapters

log = logging.getLogger(__name__)
MEMORY_SPARE = 0.1  # of the free memory, left unplanned: the measure misses allocator slack and the loss's tensors


class PackOutOfMemory(torch.OutOfMemoryError):
    """A shared backward of several trials ran out of memory: the pack now steps fewer trials at once, and each
    trial of that step trains again from its start with its own batch unchanged (`run_trial` does)."""


@dataclass(eq=False)
class _Request:
    """One trial's wait at the rendezvous: a forward (its rows) or a backward (its loss)."""

    kind: str
    input_ids: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    grad: bool = False
    autocast: tuple[str, torch.dtype] | None = None
    logits_to_keep: int | None = None  # the lean ORPO forward's: last-position logits and the last hidden state
    loss: torch.Tensor | None = None
    done: bool = False
    result: Any = None
    error: BaseException | None = None


@dataclass
class PackCounts:
    """What the pack ran (for the benchmark and the tests): how many trials each shared forward held, each shared
    training step's trials and the bytes it took, and each change of the step capacity: the new capacity, why, and
    the forwards run before it."""

    trials_per_forward: list[int] = field(default_factory=list)
    step_memory: list[tuple[int, int]] = field(default_factory=list)
    capacity_changes: list[tuple[int, str, int]] = field(default_factory=list)

    @property
    def forwards(self) -> int:
        return len(self.trials_per_forward)


class TrainingPack:
    """Up to `size` trials training at once on `base_model`. Trials join with `member(...)`, from their own threads."""

    def __init__(
        self, base_model: torch.nn.Module, size: int, pad_token_id: int = 0, memory_budget: int | None = None
    ):
        """`memory_budget`: bytes the pack's shared steps may take; without it, the device's free memory before
        each step."""
        if size < 1:
            raise ValueError(f"pack size must be at least 1, got {size}")
        self.size = size
        self.step_capacity = size  # trials stepped at once: falls to fit the memory (see the module's docstring)
        self.memory_budget = memory_budget
        # where the trainers put a solo trial's model (the stand-ins they are given hold only the adapters); PEFT
        # injects each trial's adapters into it in place, so it is also the model every shared forward runs
        self.base_model = base_model.to(PartialState().device)
        self.counts = PackCounts()
        self._model = self.base_model  # a PeftModel while any trial is in the pack
        self._pad_token_id = pad_token_id
        self._turn = threading.Condition(threading.RLock())
        self._members: dict[str, dict[str, torch.nn.Parameter]] = {}  # each trial's adapter weights, by name
        self._waiting: dict[str, _Request] = {}
        self._joined = itertools.count()
        self._served: dict[str, int] = {}  # when each trial last had a forward: the longest-waiting go first
        self._forwards = itertools.count()
        # the open training step: bytes in use (CUDA's allocator; 0 on the CPU, where the kept bytes are the measure),
        # bytes free, bytes kept for the backward
        self._step_start: tuple[int, int, int] | None = None
        self._bytes_per_trial = 0.0  # the most a trial's share of a training step took
        # threads inside `turn()` that have not joined yet: the pack's next forward waits for them to join
        self._entering = 0
        self._entering_lock = threading.Lock()
        self._thread = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the pack's lock for one trial: the trainers' code runs only under it (handed on while waiting at the
        rendezvous). The pack's trials wait for a trial that is setting up here, so that it joins their forward."""
        with self._entering_lock:
            self._entering += 1
        self._thread.entering = True
        try:
            with self._turn:
                yield
        finally:
            if self._thread.entering:  # left before joining (its set-up failed): the others need not wait for it
                self._thread.entering = False
                with self._entering_lock:
                    self._entering -= 1
                with self._turn:
                    self._run_if_all_waiting()

    @contextmanager
    def member(self, config: TrainingConfig) -> Iterator[PackedTrialModel]:
        """One trial in the pack, its adapters seeded with `config.seed` as a solo trial's are; the caller's thread
        holds the pack's turn until the trial leaves (call it inside `turn()` to hold it across the set-up too).
        The caller keeps at most `size` trials in the pack."""
        _check_packable(config)
        with self._turn:
            if len(self._members) >= self.size:
                raise RuntimeError(f"the pack already trains {self.size} trials")
            name = f"packed{next(self._joined)}"
            set_seed(config.seed)  # LoRA initialisation is random: as `run_orpo` seeds it for a solo trial
            self._model = add_adapter(self._model, name, config)
            parameters = adapter_parameters(self._model, name)
            try:
                _check_plain_head(self.base_model, config)
                stand_in = PackedTrialModel(self, name, parameters, self._model.config)
            except BaseException:
                self._model = remove_adapter(self._model, name)
                raise
            self._members[name] = parameters
            self._served[name] = -1
            if getattr(self._thread, "entering", False):  # joined: `turn()` has nothing left to undo
                self._thread.entering = False
                with self._entering_lock:
                    self._entering -= 1
            try:
                yield stand_in
            finally:
                del self._members[name]
                del self._served[name]
                self._waiting.pop(name, None)
                self._model = remove_adapter(self._model, name)
                self._run_if_all_waiting()
                self._turn.notify_all()

    def forward(
        self, name: str, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int | None = None
    ):
        """This trial's logits, from the next forward shared by the whole pack; with `logits_to_keep` (the lean ORPO
        forward) its logits at that many last positions and its last hidden state."""
        device_type = input_ids.device.type
        autocast = (device_type, torch.get_autocast_dtype(device_type)) if torch.is_autocast_enabled(device_type) else None
        request = _Request(
            "forward", input_ids, attention_mask, grad=torch.is_grad_enabled(), autocast=autocast,
            logits_to_keep=logits_to_keep,
        )
        return self._wait(name, request)

    def backward(self, name: str, loss: torch.Tensor) -> None:
        """This trial's loss into the next backward shared by the pack's trials that ran the last forward."""
        self._wait(name, _Request("backward", loss=loss))

    def _wait(self, name: str, request: _Request):
        with self._turn:
            if name not in self._members:
                raise RuntimeError(f"trial {name} is not in the pack")
            self._waiting[name] = request
            accelerate_state = _save_gradient_state()
            self._run_if_all_waiting()
            while not request.done:
                self._turn.wait()
            _restore_gradient_state(accelerate_state)
            if request.error is not None:
                raise request.error
            return request.result

    def _run_if_all_waiting(self) -> None:
        """With every trial of the pack waiting: the backward if any waits for one (the trials of the last forward),
        else the forward of the longest-waiting trials, at most `step_capacity` of them. Runs in the thread that
        arrived last, under the lock; again at once when a forward ran out of memory and went back to waiting."""
        while not self._entering and self._members and all(name in self._waiting for name in self._members):
            backward = {name: r for name, r in self._waiting.items() if r.kind == "backward"}
            if backward:
                self._run_backward(backward)
                return
            if self._run_forwards():
                return

    def _run_backward(self, backward: dict[str, _Request]) -> None:
        for name in backward:
            del self._waiting[name]
        try:
            limit = oom_packed_backward_limit()
            if limit is not None and len(backward) > limit:
                raise torch.OutOfMemoryError(f"injected: a backward of {len(backward)} trials > {limit}")
            self._measure_step(len(backward))  # before the backward frees what the step holds
            torch.autograd.backward([request.loss for request in backward.values()])
            self._check_gradients_arrived(backward)
        except BaseException as error:  # every trial in this step sees it and fails as it would alone
            self._step_start = None
            if is_out_of_memory(error) and len(backward) > 1:
                for request in backward.values():
                    request.loss = None
                self._shrink(len(backward) // 2, f"out of memory in a backward of {len(backward)} trials")
                # its message only: the error's traceback holds the step's graph, which the trials now drop
                error = PackOutOfMemory(
                    f"out of memory in a step shared by {len(backward)} trials; the pack now steps "
                    f"{self.step_capacity} at a time: {error}"
                )
            for request in backward.values():
                request.error = error
        self._finish(backward)

    def _run_forwards(self) -> bool:
        """Forward the longest-waiting trials; False when one shared forward ran out of memory and its trials went
        back to waiting for smaller steps."""
        waiting = sorted(self._waiting, key=self._served.__getitem__)  # stable: arrival order among equals
        chosen = {name: self._waiting.pop(name) for name in waiting[: self.step_capacity]}
        served = next(self._forwards)
        done: dict[str, _Request] = {}
        for group in _forward_groups(chosen).values():
            retry = False
            try:
                self._shared_forward(group)
            except BaseException as error:
                self._step_start = None
                retry = is_out_of_memory(error) and len(group) > 1
                if not retry:
                    for request in group.values():  # every trial in this step sees it and fails as it would alone
                        request.error = error
            if retry:  # again in halves, the trials seeing nothing; out of the handler, whose traceback held the
                # failed forward's tensors
                for request in group.values():
                    request.result = None
                release_memory()
                self._shrink(len(group) // 2, f"out of memory in a forward of {len(group)} trials")
                self._waiting.update(group)
                continue
            done.update(group)
        for name in done:
            self._served[name] = served
        self._finish(done)
        return bool(done)

    def _finish(self, requests: dict[str, _Request]) -> None:
        for request in requests.values():
            request.done = True
        self._turn.notify_all()

    def _shrink(self, capacity: int, why: str) -> None:
        capacity = max(1, min(capacity, self.step_capacity))
        if capacity == self.step_capacity:
            return
        self.step_capacity = capacity
        self.counts.capacity_changes.append((capacity, why, self.counts.forwards))
        log.warning("packed trials: %s; now %d trial(s) per step (of %d in the pack)", why, capacity, self.size)

    def _measure_step(self, trials: int) -> None:
        """The memory the training step about to run its backward holds, and the step capacity cut to what the
        memory fits."""
        if self._step_start is None:
            return
        in_use_before, free_before, kept = self._step_start
        self._step_start = None
        device = self.base_model.device
        # CUDA: what the allocator holds now beyond what it held before the forward (activations, logits, the
        # trials' loss tensors), read without resetting its peak counter, which others may be reading
        took = torch.cuda.memory_allocated(device) - in_use_before if device.type == "cuda" else kept
        self.counts.step_memory.append((trials, took))
        self._bytes_per_trial = max(self._bytes_per_trial, took / trials)
        budget = self.memory_budget if self.memory_budget is not None else free_before
        if self._bytes_per_trial > 0:
            fits = int(budget * (1 - MEMORY_SPARE) // self._bytes_per_trial)
            if fits < self.step_capacity:
                self._shrink(fits, f"a step of {trials} trial(s) took {took / 2**20:.1f} MiB and "
                             f"{budget / 2**20:.0f} MiB {'are budgeted' if self.memory_budget else 'are free'}")

    def _check_gradients_arrived(self, backward: dict[str, _Request]) -> None:
        """A loss that does not lead back to its trial's adapters would train nothing, silently: fail loudly."""
        for name in backward:
            if all(parameter.grad is None for parameter in self._members[name].values()):
                raise RuntimeError(f"packed trial {name}: its loss reached none of its adapter weights (a packing bug)")

    def _shared_forward(self, group: dict[str, _Request]) -> None:
        first = next(iter(group.values()))
        length = max(request.input_ids.shape[1] for request in group.values())
        input_ids = torch.cat([_pad_to(r.input_ids, length, self._pad_token_id) for r in group.values()])
        attention_mask = torch.cat([_pad_to(r.attention_mask, length, 0) for r in group.values()])
        segments = [(name, request.input_ids.shape[0]) for name, request in group.items()]
        limit = oom_packed_rows_limit()
        if limit is not None and first.grad and input_ids.shape[0] > limit:
            raise torch.OutOfMemoryError(f"injected: a shared forward of {input_ids.shape[0]} rows > {limit}")
        autocast = torch.autocast(first.autocast[0], dtype=first.autocast[1]) if first.autocast else nullcontext()
        self._model.train(first.grad)  # the adapters' dropout: on for training rows, off for evaluation
        # a training forward opens a step, measured at its backward (on the CPU by what it keeps for the backward)
        counting = first.grad and input_ids.device.type != "cuda"
        kept = _KeptForBackward(self._model) if counting else nullcontext()
        if first.grad:
            self._step_start = (*_memory_in_use_and_free(input_ids.device), 0)
        # The executor may be a trial that waits inside its evaluation (no_grad): each trial's slice is taken in
        # the group's grad mode too, or a training trial's slice would not lead back to its adapters.
        keep = first.logits_to_keep
        with torch.set_grad_enabled(first.grad), autocast:
            with rows_to_adapters(self._model, segments), kept:
                if keep:  # the lean forward: the trials apply the output layer themselves, in chunks
                    with captured_output(self.base_model.get_decoder()) as decoded:
                        logits = self.base_model(
                            input_ids=input_ids, attention_mask=attention_mask, use_cache=False, logits_to_keep=keep
                        ).logits
                    hidden = decoded[-1].last_hidden_state
                else:
                    logits = self.base_model(
                        input_ids=input_ids, attention_mask=attention_mask, use_cache=False
                    ).logits
            if keep:
                check_plain_output_layer(
                    self.base_model.config, self.base_model.get_output_embeddings(), hidden, logits
                )
            if counting:
                returned = hidden if keep else logits
                self._step_start = (*self._step_start[:2], kept.bytes + returned.nbytes)
            start = 0
            for request in group.values():
                rows, own_length = request.input_ids.shape
                if keep:  # the logits' last positions are the padded batch's; the trial reads only their shape
                    request.result = (logits[start : start + rows], hidden[start : start + rows, :own_length])
                else:
                    request.result = logits[start : start + rows, :own_length]
                start += rows
        self.counts.trials_per_forward.append(len(group))


class PackedTrialModel(torch.nn.Module):
    """What one trial's trainer sees as its model: its adapter's weights (so its optimizer, weight decay and gradient
    clipping cover those alone) and a forward that goes through the pack."""

    main_input_name = "input_ids"
    is_gradient_checkpointing = False

    def __init__(self, pack: TrainingPack, name: str, parameters: dict[str, torch.nn.Parameter], config):
        super().__init__()
        if not parameters:
            raise ConfigError(f"trial {name}: its LoRA config adds no trainable weights to this model")
        self.pack_name = name
        self.config = config
        self.warnings_issued: dict[str, bool] = {}
        # names keep their parts (`lora_A`, ...) so the trainer's weight-decay rule sees what it sees solo
        self.adapter = torch.nn.ParameterDict({key.replace(".", "__"): value for key, value in parameters.items()})
        self._pack = pack

    def forward(self, input_ids, attention_mask=None, use_cache=False, logits_to_keep=None, **kwargs):
        if kwargs:
            raise ConfigError(
                f"packed trials take input_ids, attention_mask and logits_to_keep only, not {sorted(kwargs)}"
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if not logits_to_keep:
            return CausalLMOutputWithPast(logits=self._pack.forward(self.pack_name, input_ids, attention_mask))
        logits, hidden = self._pack.forward(self.pack_name, input_ids, attention_mask, logits_to_keep)
        return CausalLMOutputWithPast(logits=logits, hidden_states=(hidden,))

    # What the lean ORPO forward asks of its model (_trl.py), answered from the pack's model. Methods, not
    # attributes: the shared layers must not become this trial's parameters.
    def get_output_embeddings(self) -> torch.nn.Module:
        return self._pack.base_model.get_output_embeddings()

    def get_base_model(self) -> torch.nn.Module:
        return self._pack.base_model


def _check_packable(config: TrainingConfig) -> None:
    where = "packed trials (pack above 1)"
    if config.orpo.gradient_checkpointing:
        raise ConfigError(f"{where} run without gradient checkpointing: set orpo.gradient_checkpointing: false, "
                          "or pack: 1 to keep it")
    if config.lora.bias != "none":
        raise ConfigError(f"{where}: with lora.bias: {config.lora.bias} the trials would train the same biases; "
                          "set lora.bias: none or pack: 1")


def _check_plain_head(language_model: torch.nn.Module, config: TrainingConfig) -> None:
    """The lean forward applies the shared output layer in each trial's thread, outside the per-row adapters."""
    if config.compute.lean_orpo_forward and hasattr(language_model.get_output_embeddings(), "lora_A"):
        raise ConfigError("packed trials with compute.lean_orpo_forward: the output layer cannot carry LoRA; leave it "
                          "out of lora.target_modules, or set compute.lean_orpo_forward: false or pack: 1")


class _KeptForBackward(torch.autograd.graph.saved_tensors_hooks):
    """Counts the bytes autograd keeps for the backward during a forward: the activations, not the model's own
    weights (which it also keeps), each storage once."""

    def __init__(self, model: torch.nn.Module):
        self._weights = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
        self._storages: dict[int, int] = {}
        super().__init__(self._keep, lambda tensor: tensor)

    def _keep(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self._weights:
            self._storages[storage.data_ptr()] = storage.nbytes()
        # detached: the tensor itself, where it is an output of the op that saves it, would hold that op's graph
        # node, which holds it: a cycle through C++ that no collector frees if the step never runs its backward
        return tensor.detach()

    @property
    def bytes(self) -> int:
        return sum(self._storages.values())


def _memory_in_use_and_free(device: torch.device) -> tuple[int, int]:
    """CUDA: the allocator's bytes in use and the bytes it can still get (the device's free memory and its own
    cached blocks). CPU: 0 (the step is measured by what it keeps, not by the process's size) and the machine's
    available memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return torch.cuda.memory_allocated(device), free + cached
    import psutil

    return 0, psutil.virtual_memory().available


def _forward_groups(batch: dict[str, _Request]) -> dict[tuple, dict[str, _Request]]:
    """Training rows and evaluation rows (and different autocast settings, full and lean forwards) go through
    separate forwards."""
    groups: dict[tuple, dict[str, _Request]] = {}
    for name, request in batch.items():
        groups.setdefault((request.grad, request.autocast, request.logits_to_keep), {})[name] = request
    return groups


def _pad_to(tensor: torch.Tensor, length: int, value: int) -> torch.Tensor:
    return torch.nn.functional.pad(tensor, (0, length - tensor.shape[1]), value=value)


def _save_gradient_state() -> dict:
    return {key: list(value) if isinstance(value, list) else value for key, value in GradientState._shared_state.items()}


def _restore_gradient_state(saved: dict) -> None:
    GradientState._shared_state.clear()
    GradientState._shared_state.update(saved)
