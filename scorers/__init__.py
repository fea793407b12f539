"""anibench's scorer plugins (installed as ``anibench.scorers``), one module per metric family.

Every scorer subclasses :class:`anibench.scoring.Scorer` and is registered through the
``anibench.scorers`` entry-point group in ``pyproject.toml``. The weight-free scorers:

* ``temporal_flickering``  VBench temporal flickering
* ``dynamic_degree``       VBench dynamic degree (DIS optical flow in place of RAFT)
* ``motion_smoothness``    flow-warped frame-interpolation error, VBench's formula
* ``static_clip``          VBench's static-video filter as a per-clip flag
* ``guide_psnr``, ``guide_ssim``  keyframe adherence at every guide position
* ``mask_precision``       share of motion inside the motion mask (AniSora, Table 2)
* ``mask_motion``          share of the motion mask that moves (read beside mask_precision)
* ``scene_cuts``           hard cuts (PySceneDetect content detector)
"""
