"""Ensembles of sequence classifiers: the members' probabilities aligned on one label set,
the combiners, and the output folder (a manifest beside the members' folders) with its
loader, which `stagelab predict` and the playground use too.

Output folder of an ensemble stage::

    manifest.json      {"format": "stagelab-ensemble", "version": 1, "labels": [...],
                        "combiner": "vote" | "average" | "weighted", "weights": [...],
                        "max_length": 128,
                        "members": [{"name", "folder", "source", "trust_remote_code"}]}
    members/<name>/    each member's save_pretrained folder (hard links where possible)

    from engine.models.ensemble import Ensemble
    ens = Ensemble.load("…/output")
    ens.predict_proba(["a great day"])   # [rows, labels] of the combined probabilities
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.models.tokenizer_fit import fit_to_tokenizer, ready_tokenizer
from engine.spec.outputs import trusts_remote_code

MANIFEST = "manifest.json"
FORMAT = "stagelab-ensemble"


class EnsembleError(ValueError):
    """A member cannot join the ensemble; the message says why and what to do."""


@dataclass
class Member:
    """One loaded classifier and where its labels sit in the ensemble's label order."""

    name: str
    folder: Path
    source: str
    model: Any
    tokenizer: Any
    columns: list[int]  # ensemble label j is the model's output columns[j]
    trust_remote_code: bool = False  # its folder's code runs (the plan allowed it)


def load_member(
    name: str, folder: Path, source: str, labels: list[str], *, trust_remote_code: bool = False
) -> Member:
    """Load a classifier and align its `id2label` with `labels`. `trust_remote_code`: the
    plan allowed the member's own code (its source's setting, kept in the manifest), else
    the stage that wrote its folder did (engine.spec.outputs.CODE_FILE).

    Raises:
        EnsembleError: the folder holds no classifier, or its labels differ.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    trust = trust_remote_code or trusts_remote_code(folder)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(folder), trust_remote_code=trust
        ).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust)
    except (OSError, ValueError) as exc:
        raise EnsembleError(f"member '{name}' ({source}) cannot be loaded: {exc}") from None
    # A folder as it comes (a decoder's tokenizer without a padding token) pads its batches
    # with eos, on the right, and its classifier finds each row's last real token by it.
    ready_tokenizer(tokenizer, "sequence_classification")
    fit_to_tokenizer(model, tokenizer)
    id2label = {int(k): str(v) for k, v in (model.config.id2label or {}).items()}
    theirs = [id2label[i] for i in sorted(id2label)]
    if sorted(theirs) != sorted(labels):
        missing = sorted(set(labels) - set(theirs))
        extra = sorted(set(theirs) - set(labels))
        raise EnsembleError(
            f"member '{name}' ({source}) predicts {', '.join(theirs)}, not the ensemble's "
            f"labels {', '.join(labels)}"
            + (f" (missing {', '.join(missing)})" if missing else "")
            + (f" (extra {', '.join(extra)})" if extra else "")
            + "; use members trained on the same label set"
        )
    columns = [theirs.index(label) for label in labels]
    return Member(name, Path(folder), source, model, tokenizer, columns, trust)


@torch.no_grad()
def member_proba(
    member: Member,
    texts: list[str],
    *,
    pairs: list[str] | None = None,
    max_length: int = 128,
    batch_size: int = 32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """[rows, labels] probabilities of one member, columns in the ensemble's label order;
    the member reads the texts with its own tokenizer."""
    device = device or torch.device("cpu")
    member.model.to(device)
    out = []
    for start in range(0, len(texts), batch_size):
        enc = member.tokenizer(
            texts[start : start + batch_size],
            pairs[start : start + batch_size] if pairs else None,
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        logits = member.model(**enc).logits.float()
        out.append(torch.softmax(logits, dim=-1)[:, member.columns].cpu())
    return torch.cat(out) if out else torch.zeros((0, len(member.columns)))


def combine(probs: torch.Tensor, combiner: str, weights: list[float] | None) -> torch.Tensor:
    """Combined [rows, labels] probabilities from members' [members, rows, labels].

    `vote`: each member votes its top label; the vote shares are the probabilities, and a
    tie goes to the label with the highest summed probability (a share of 1e-6 of it is
    added, too little to overturn a vote). `average` / `weighted`: the weighted mean of the
    probabilities (weights normalised to sum 1; none: equal).
    """
    k, _, labels = probs.shape
    if combiner == "vote":
        votes = torch.nn.functional.one_hot(probs.argmax(-1), labels).sum(0).double()
        share = votes + 1e-6 * probs.sum(0).double() / k
        return (share / share.sum(-1, keepdim=True)).float()
    w = torch.tensor(weights if weights is not None else [1.0] * k, dtype=torch.float64)
    w = w / w.sum()
    return (probs.double() * w.view(k, 1, 1)).sum(0).float()


def learn_weights(probs: torch.Tensor, labels: torch.Tensor, steps: int = 300) -> list[float]:
    """Weights on the simplex that minimise the log-loss of the weighted mean of the
    members' probabilities on labelled rows (softmax-parametrised, L-BFGS, deterministic).

    Args:
        probs: [members, rows, labels] probabilities.
        labels: [rows] the true label of each row.
    """
    k = probs.shape[0]
    picked = probs.double()[:, torch.arange(labels.shape[0]), labels].T  # [rows, members]
    theta = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        mixed = picked @ torch.softmax(theta, 0)
        loss = -torch.log(mixed.clamp_min(1e-12)).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return torch.softmax(theta.detach(), 0).tolist()


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a folder, as hard links where the file system allows (no second copy of
    large weights), else as copies."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    # A stage saved again (a resumed run) replaces what an earlier save left.
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, copy_function=link)


def save_ensemble(
    out: Path,
    members: list[Member],
    *,
    labels: list[str],
    combiner: str,
    weights: list[float] | None,
    max_length: int,
) -> Path:
    """Write the ensemble's output folder (manifest + members' folders)."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for member in members:
        _link_tree(member.folder, out / "members" / member.name)
        entries.append(
            {
                "name": member.name,
                "folder": f"members/{member.name}",
                "source": member.source,
                "trust_remote_code": member.trust_remote_code,
            }
        )
    manifest = {
        "format": FORMAT,
        "version": 1,
        "labels": labels,
        "combiner": combiner,
        "weights": weights,
        "max_length": max_length,
        "members": entries,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


@dataclass
class Ensemble:
    """A loaded ensemble output: predicts combined probabilities for new texts."""

    labels: list[str]
    combiner: str
    weights: list[float] | None
    max_length: int
    members: list[Member]

    @classmethod
    def load(cls, folder: str | Path) -> Ensemble:
        """Load an ensemble stage's output folder.

        Raises:
            EnsembleError: no manifest, or a member that cannot be loaded.
        """
        folder = Path(folder)
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise EnsembleError(f"{folder} has no readable {MANIFEST}: {exc}") from None
        if data.get("format") != FORMAT:
            raise EnsembleError(f"{folder / MANIFEST} is not a Stagelab ensemble manifest")
        labels = [str(v) for v in data["labels"]]
        members = [
            load_member(
                m["name"],
                folder / m["folder"],
                m.get("source", ""),
                labels,
                trust_remote_code=m.get("trust_remote_code") is True,
            )
            for m in data["members"]
        ]
        return cls(labels, data["combiner"], data.get("weights"), data["max_length"], members)

    def member_probas(self, texts: list[str]) -> torch.Tensor:
        """[members, rows, labels] probabilities of every member."""
        return torch.stack(
            [member_proba(m, texts, max_length=self.max_length) for m in self.members]
        )

    def predict_proba(self, texts: list[str]) -> torch.Tensor:
        """[rows, labels] combined probabilities."""
        return combine(self.member_probas(texts), self.combiner, self.weights)
