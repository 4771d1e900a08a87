"""Spectrum-based fault localisation of neurons: hit spectra, suspiciousness, top-k selection.

Following DeepFault (Eniser et al. 2019, "DeepFault: Fault Localization for Deep Neural
Networks", FASE), a neuron is a program element, an input the model classifies correctly is
a passing test and a misclassified one a failing test. :func:`spectrum` counts each unit's hit
spectrum; a measure of the thesis' Table 3.1 scores it:

* Tarantula: Jones & Harrold 2005, "Empirical evaluation of the Tarantula automatic
  fault-localization technique", ASE;
* Ochiai: Ochiai 1957, "Zoogeographic studies on the soleoid fishes found in Japan and its
  neighbouring regions"; Abreu et al. 2006 brought it to fault localisation;
* D*: Wong et al. 2014, "The DStar method for effective software fault localization", IEEE
  Trans. Reliability.

:func:`feature_map_scores` averages a conv layer's neuron scores per map (Eq. 4.4), and
:func:`top_suspicious` selects the k most suspicious units as the thesis' suspiciousness loss
needs them. Everything here is pure: arrays in (numpy or torch), numpy out, no model calls.

Differences from the seed code (seed 004): it used Tarantula only; every measure here states
how it handles 0/0 (all give 0, and D* gives ``inf`` for a nonzero numerator over 0). The seed
gave all 10 per-class generators one class's suspicious set (its config was read once at
import); here the caller computes spectra and selections per class.

Example:
    >>> import numpy as np
    >>> from robust.faults import spectrum, tarantula, top_suspicious
    >>> acts = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 1.0], [3.0, 1.0, 0.0]])
    >>> s = spectrum(acts, correct=np.array([True, True, False]))
    >>> tarantula(s).tolist()
    [0.6666666666666666, 1.0, 0.0]
    >>> top_suspicious({"fc1": tarantula(s)}, k=2)["fc1"].tolist()
    [1, 0]
"""

from robust.faults._measures import MEASURES, dstar, feature_map_scores, ochiai, tarantula
from robust.faults._select import top_suspicious
from robust.faults._spectrum import Spectrum, spectrum

__all__ = [
    "MEASURES",
    "Spectrum",
    "dstar",
    "feature_map_scores",
    "ochiai",
    "spectrum",
    "tarantula",
    "top_suspicious",
]
