"""anibench's generator plugins (installed as ``anibench.generators``), one module per family.

Baselines, useful as anchor rows in every table:

* ``reference``  returns the case's ground-truth clip (the "GT" row of AniSora's tables)
* ``static``     repeats the first guide frame ("PPT animation", no motion at all)
* ``crossfade``  blends linearly between the guide keyframes at their positions

Model plugins (AniSora V1/V2/V3, API clients) register through the same
``anibench.generators`` entry-point group.
"""
