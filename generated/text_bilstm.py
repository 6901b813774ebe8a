# generated, do not edit; run `nnspec codegen` to update
# source: specs/text_bilstm.yaml
# model sha256: 4a567c862363cbdf060ac5bc987f11754cf31b849fc9050f7d2938cf552cc8e1
# nnspec: 0.1.0

import torch
from torch import nn


class TextBiLSTM(nn.Module):
    """A bidirectional LSTM text classifier (Keras' Bidirectional(LSTM(32)) example):
    token ids, 32-dimensional embeddings, both directions' final states concatenated,
    two classes.

    Input: [N, 40]; output: [N, 2]; 49,026 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embedding1 = nn.Embedding(1000, 32)
        self.lstm1 = nn.LSTM(32, 32, bidirectional=True, batch_first=True)
        self.drop1 = nn.Dropout(p=0.3)
        self.fc1 = nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 2] of a batch of inputs [N, 40]."""
        x = self.embedding1(x)  # [N, 40, 32]
        _, (h, _) = self.lstm1(x)
        x = torch.cat([h[-2], h[-1]], dim=1)  # [N, 64]
        x = self.drop1(x)  # [N, 64]
        x = self.fc1(x)  # [N, 2]
        return x
