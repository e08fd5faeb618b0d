"""One recipe per stage kind, all implementing `engine.train.recipe.Recipe`.

A new stage kind is one module here plus its entry in `RECIPES`, and its name in
`engine.spec.RUNNABLE_KINDS` (a test checks that the two agree)."""

from engine.recipes.distill import DistillRecipe
from engine.recipes.ensemble import EnsembleRecipe
from engine.recipes.grow import GrowRecipe
from engine.recipes.joint import JointRecipe
from engine.recipes.preference import PreferenceRecipe
from engine.recipes.pretrain import PretrainRecipe
from engine.recipes.train import TrainRecipe
from engine.train.recipe import Recipe, StepLoss

RECIPES: dict[str, type] = {
    "pretrain": PretrainRecipe,
    "train": TrainRecipe,
    "distill": DistillRecipe,
    "grow": GrowRecipe,
    "preference": PreferenceRecipe,
    "ensemble": EnsembleRecipe,
    "joint": JointRecipe,
}

__all__ = [
    "RECIPES",
    "DistillRecipe",
    "EnsembleRecipe",
    "GrowRecipe",
    "JointRecipe",
    "PreferenceRecipe",
    "PretrainRecipe",
    "Recipe",
    "StepLoss",
    "TrainRecipe",
]
