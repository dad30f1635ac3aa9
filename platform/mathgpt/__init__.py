"""MathGPT Platform: problem-solving data synthesis, curation, CPT/SFT, evaluation and serving on Ray.

Importing this package is cheap and side-effect free: no `ray.init`, no vLLM, no DeepSpeed.
"""

__version__ = "0.1.0"
