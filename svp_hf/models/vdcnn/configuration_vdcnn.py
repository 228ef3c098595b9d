"""Configuration of VDCNN, the very deep character-level CNN of Conneau et al. (EACL 2017)."""

from __future__ import annotations

from transformers.configuration_utils import PretrainedConfig

# Convolutional blocks per stage (filters 64, 128, 256, 512), from the paper and the SVP reference.
BLOCKS_PER_STAGE = {9: (1, 1, 1, 1), 17: (2, 2, 2, 2), 29: (5, 5, 2, 2), 49: (8, 8, 5, 3)}
DOWNSAMPLING = ("maxpool", "conv", "kmax")


class VDCNNConfig(PretrainedConfig):
    """Configuration of a `VDCNNForSequenceClassification`.

    Args:
        depth (`int`, defaults to `9`): 9, 17, 29 or 49 convolutional layers; sets ``blocks_per_stage``.
        vocab_size (`int`, defaults to `69`): the character vocabulary (pad 0, unknown 1, 67 symbols).
        embedding_size (`int`, defaults to `16`): character embedding width.
        filters (`list[int]`, defaults to `[64, 128, 256, 512]`): channels of the four stages.
        downsampling (`str`, defaults to `"maxpool"`): how each stage halves the sequence: ``"maxpool"`` (kernel 3,
            stride 2), ``"conv"`` (a stride-2 convolution) or ``"kmax"`` (k-max pooling to half the length).
        shortcut (`bool`, defaults to `False`): residual connections around each block.
        kmax (`int`, defaults to `8`): k of the final k-max pooling.
        hidden_size (`int`, defaults to `2048`): width of the two fully connected layers.
        max_chars (`int`, defaults to `1014`): characters per input (the tokenizer pads or truncates to it; not
            called `max_length`, which transformers reserves for generation).
    """

    model_type = "vdcnn"

    def __init__(
        self,
        depth: int = 9,
        vocab_size: int = 69,
        embedding_size: int = 16,
        filters: list[int] | tuple[int, ...] = (64, 128, 256, 512),
        downsampling: str = "maxpool",
        shortcut: bool = False,
        kmax: int = 8,
        hidden_size: int = 2048,
        max_chars: int = 1014,
        pad_token_id: int = 0,
        **kwargs,
    ):
        if depth not in BLOCKS_PER_STAGE:
            raise ValueError(f"VDCNN depth must be one of {sorted(BLOCKS_PER_STAGE)}, got {depth}")
        if downsampling not in DOWNSAMPLING:
            raise ValueError(f"downsampling must be one of {DOWNSAMPLING}, got {downsampling!r}")
        if len(filters) != 4:
            raise ValueError(f"filters must list the channels of 4 stages, got {list(filters)}")
        self.depth = depth
        self.blocks_per_stage = list(BLOCKS_PER_STAGE[depth])
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.filters = list(filters)
        self.downsampling = downsampling
        self.shortcut = shortcut
        self.kmax = kmax
        self.hidden_size = hidden_size
        self.max_chars = max_chars
        super().__init__(pad_token_id=pad_token_id, **kwargs)
