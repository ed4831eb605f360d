"""Where voxels are: the model grid (MNI, 2.5 mm), the MNI152 templates and the AAL-116 atlas on any grid,
and resampling between grids through an affine. Every stage shares these; they import no stage."""
