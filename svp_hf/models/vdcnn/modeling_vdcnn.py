"""VDCNN (Conneau et al., EACL 2017) as a `transformers` model.

Characters -> embedding (16) -> conv3 (64) -> four stages of convolutional blocks (64/128/256/512 filters; a block
is two conv3-BatchNorm-ReLU) with the sequence halved between stages -> k-max pooling (k = 8) -> two fully
connected layers of 2048 -> classes.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel

from .configuration_vdcnn import VDCNNConfig


def kmax_pooling(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` largest values along the last dimension, kept in their original order."""
    k = min(k, x.shape[-1])
    index = x.topk(k, dim=-1).indices.sort(dim=-1).values
    return x.gather(-1, index)


class VDCNNConvBlock(nn.Module):
    """Two conv3-BatchNorm-ReLU layers; with ``shortcut`` a residual connection (1x1 projection when the channels
    change)."""

    def __init__(self, in_channels: int, out_channels: int, shortcut: bool):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.shortcut = shortcut
        self.projection = None
        if shortcut and in_channels != out_channels:
            self.projection = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, kernel_size=1, bias=False), nn.BatchNorm1d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut:
            out = out + (x if self.projection is None else self.projection(x))
        return torch.relu(out)


class VDCNNDownsample(nn.Module):
    """Halves the sequence length between stages."""

    def __init__(self, kind: str, channels: int):
        super().__init__()
        self.kind = kind
        if kind == "maxpool":
            self.op = nn.MaxPool1d(kernel_size=3, stride=2, padding=1)
        elif kind == "conv":
            self.op = nn.Sequential(
                nn.Conv1d(channels, channels, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm1d(channels),
                nn.ReLU(),
            )
        else:
            self.op = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op is None:
            return kmax_pooling(x, (x.shape[-1] + 1) // 2)
        return self.op(x)


class VDCNNPreTrainedModel(PreTrainedModel):
    config_class = VDCNNConfig
    base_model_prefix = "vdcnn"
    main_input_name = "input_ids"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv1d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.05)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()


class VDCNNModel(VDCNNPreTrainedModel):
    """The convolutional trunk and the fully connected layers; returns the pooled ``hidden_size`` features."""

    def __init__(self, config: VDCNNConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.stem = nn.Conv1d(config.embedding_size, config.filters[0], kernel_size=3, padding=1)
        layers: list[nn.Module] = []
        in_channels = config.filters[0]
        for stage, (channels, blocks) in enumerate(zip(config.filters, config.blocks_per_stage)):
            if stage > 0:
                layers.append(VDCNNDownsample(config.downsampling, in_channels))
            for _ in range(blocks):
                layers.append(VDCNNConvBlock(in_channels, channels, config.shortcut))
                in_channels = channels
        self.stages = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(config.filters[-1] * config.kmax, config.hidden_size),
            nn.ReLU(),
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.ReLU(),
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids).transpose(1, 2)  # [B, E, L]
        x = self.stages(self.stem(x))
        x = kmax_pooling(x, self.config.kmax).flatten(1)  # [B, 512 * k]
        return self.fc(x)


class VDCNNForSequenceClassification(VDCNNPreTrainedModel):
    """VDCNN with a linear classifier on the pooled features.

    ``output_hidden_states=True`` returns the pooled ``[B, hidden_size]`` features as ``hidden_states[-1]`` (what the
    k-centers strategy embeds rows with).
    """

    def __init__(self, config: VDCNNConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.vdcnn = VDCNNModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.vdcnn.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.vdcnn.embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        # attention_mask is accepted for API compatibility: padding is the pad character, whose embedding is zero
        pooled = self.vdcnn(input_ids)
        logits = self.classifier(pooled)
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = nn.functional.mse_loss(logits.squeeze(-1), labels.float())
            else:
                loss = nn.functional.cross_entropy(logits, labels.view(-1))
        hidden = (pooled,) if output_hidden_states else None
        if return_dict is False:
            out = (logits,) + ((hidden,) if hidden else ())
            return ((loss,) + out) if loss is not None else out
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden)
