"""One recipe per stage kind, all with the same small interface (see PretrainRecipe)."""

from engine.recipes.pretrain import PretrainRecipe
from engine.recipes.train import TrainRecipe

RECIPES = {"pretrain": PretrainRecipe, "train": TrainRecipe}

__all__ = ["RECIPES", "PretrainRecipe", "TrainRecipe"]
