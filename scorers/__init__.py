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
* ``animation_cadence``, ``held_frames``, ``judder``  anime timing: frames per drawing, held share, off-cadence holds
* ``black_borders``        share of the frame under static black bars

Model-based (weights through ``anibench weights``):

* ``vbench.subject_consistency``, ``vbench.i2v_subject``  VBench on DINO ViT-B/16
* ``vbench.background_consistency``                       VBench on CLIP ViT-B/32
"""
