"""Floor 4: keras_acts layers inside keras-cv / keras-hub vision backbones.

* :func:`swap_activations` -- graph surgery on any Functional / Sequential /
  task model: a fresh keras_acts layer at every matching activation site.
* :func:`find_activation_sites` -- the sites a swap would replace (read-only).
* :func:`build` -- the papers' backbones built from config (never downloading)
  with their activations swapped; :func:`available` lists them.

Example:
    >>> from keras_acts import backbones
    >>> original = backbones.build("resnet18", input_shape=(64, 64, 3))
    >>> len(backbones.find_activation_sites(original))
    17
    >>> swapped = backbones.swap_activations(original, "acon_c")
    >>> len(backbones.find_activation_sites(swapped))   # all replaced
    0
"""

from keras_acts.backbones.builders import available
from keras_acts.backbones.builders import build
from keras_acts.backbones.sites import HIDDEN_KINDS
from keras_acts.backbones.sites import PLACEMENTS
from keras_acts.backbones.sites import ActivationSite
from keras_acts.backbones.sites import acon_resnet
from keras_acts.backbones.sites import find_activation_sites
from keras_acts.backbones.swap import SwappedModel
from keras_acts.backbones.swap import swap_activations

__all__ = ["ActivationSite", "HIDDEN_KINDS", "PLACEMENTS", "SwappedModel", "acon_resnet",
           "available", "build", "find_activation_sites", "swap_activations"]
