"""The explanation methods by name: Grad-CAM, Grad-CAM++, SHAP (GradientExplainer), LIME and
the random baseline.

:data:`REGISTRY` holds the names ``explain.methods`` accepts, plus ``random``; :func:`bind` makes
one bound to a model (see :class:`~emotion.explain.base.MapMethod`).
"""

from __future__ import annotations

from emotion.explain.base import MapMethod, Subject
from emotion.explain.baseline import RandomMethod
from emotion.explain.cam import GradCamMethod, GradCamPlusPlusMethod
from emotion.explain.lime_weights import LimeMethod
from emotion.explain.params import ExplainParams
from emotion.explain.shap_values import ShapMethod

REGISTRY: dict[str, type[MapMethod]] = {
    "gradcam": GradCamMethod,
    "gradcam_pp": GradCamPlusPlusMethod,
    "shap": ShapMethod,
    "lime": LimeMethod,
    "random": RandomMethod,
}
#: methods whose maps depend on the seed (stability is measured)
STOCHASTIC: frozenset[str] = frozenset(name for name, cls in REGISTRY.items() if cls.stochastic)


def bind(name: str, subject: Subject, params: ExplainParams) -> MapMethod:
    """The method registered as ``name``, bound to ``subject`` with its settings from ``params``."""
    try:
        method = REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown explanation method {name!r}; known: {sorted(REGISTRY)}"
        ) from None
    return method.bind(subject, params)
