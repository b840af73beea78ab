"""What FLUX.1 and SD3 share: flow-matching MMDiT transformers with a 16-channel VAE and CLIP + T5 text encoders.
Their MODEL and CLIP handles, loading from diffusers folders and from single files (whole checkpoints, a transformer
on its own, separate CLIP-L / CLIP-G / T5 / VAE files), and the loader nodes. The families' own parts live in
:mod:`nodes.flux` and :mod:`nodes.sd3`."""
