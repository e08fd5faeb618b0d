"""One recipe per stage kind: `engine.train.recipe.TrainingRecipe` for the kinds that
train, `EvaluationRecipe` for those that only score (an ensemble).

`pretrain`, `train` and `grow` share one recipe (`SingleModelRecipe`: one model, one
source, its head's loss), differing only in what each reads from its stage. A new stage
kind is a module here plus its entry in `RECIPES`, and its name in
`engine.spec.stages.RUNNABLE_KINDS` (a test checks that the two agree)."""

from collections.abc import Callable

from engine.recipes.distill import DistillRecipe
from engine.recipes.ensemble import EnsembleRecipe
from engine.recipes.joint import JointRecipe
from engine.recipes.merge import MergeRecipe
from engine.recipes.preference import PreferenceRecipe
from engine.recipes.single import SingleModelRecipe
from engine.runtime.context import StageContext
from engine.train.recipe import EvaluationRecipe, Recipe, StepLoss, TrainingRecipe

RECIPES: dict[str, Callable[[StageContext], Recipe]] = {
    "pretrain": SingleModelRecipe,
    "train": SingleModelRecipe,
    "grow": SingleModelRecipe,
    "distill": DistillRecipe,
    "preference": PreferenceRecipe,
    "ensemble": EnsembleRecipe,
    "joint": JointRecipe,
    "merge": MergeRecipe,
}

__all__ = [
    "RECIPES",
    "DistillRecipe",
    "EnsembleRecipe",
    "EvaluationRecipe",
    "JointRecipe",
    "MergeRecipe",
    "PreferenceRecipe",
    "Recipe",
    "SingleModelRecipe",
    "StepLoss",
    "TrainingRecipe",
]
