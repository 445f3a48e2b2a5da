"""A BiLSTM over padded, masked token states: the hierarchy's levels and a tagger's private encoders."""
from __future__ import annotations

import torch
from torch import nn


class BiLstm(nn.Module):
    def __init__(self, input_dim: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_size, num_layers, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = 2 * hidden_size

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) states and their (B, T) mask -> (B, T, output_dim), zero at padding. ``lengths``: the mask's
        row sums on the CPU, where packing needs them, when the caller knows them (no read-back from a GPU)."""
        lengths = mask.sum(1).cpu() if lengths is None else lengths
        packed = nn.utils.rnn.pack_padded_sequence(inputs.float(), lengths, batch_first=True, enforce_sorted=False)
        # fp32 under any autocast: oneDNN has no bf16 LSTM on CPUs without bf16 instructions (it fails there), and
        # on a GPU cuDNN would run the recurrence in fp16 even under bf16 autocast, with no loss scaling
        with torch.autocast(inputs.device.type, enabled=False):
            output, _ = self.lstm(packed)
        output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=inputs.size(1))
        return self.dropout(output)
