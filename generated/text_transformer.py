# generated, do not edit; run `nnspec codegen` to update
# source: specs/text_transformer.yaml
# model sha256: 194437007413726fac97d8be93757da9def4a5a1f2ee36d7fad18827d227871b
# nnspec: 0.1.0

import torch
from torch import nn


class TextTransformer(nn.Module):
    """A small transformer encoder classifier: token ids, embeddings plus learned
    positions, a class token, two encoder layers, and the class token's final vector to
    two classes.

    Input: [N, 40]; output: [N, 2]; 50,530 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embedding1 = nn.Embedding(1000, 32)
        self.pos1 = nn.Embedding(40, 32)
        self.cls1 = nn.Embedding(num_embeddings=1, embedding_dim=32)
        self.encoder = nn.Sequential(
            nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True),
            nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True),
        )
        self.ln1 = nn.LayerNorm(32)
        self.fc1 = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 2] of a batch of inputs [N, 40]."""
        x = self.embedding1(x)  # [N, 40, 32]
        x = x + self.pos1.weight[: x.shape[1]]  # [N, 40, 32]
        x = torch.cat(
            [self.cls1.weight.expand(x.shape[0], -1, -1), x], dim=1
        )  # [N, 41, 32]
        x = self.encoder(x)  # [N, 41, 32]
        x = self.ln1(x)  # [N, 41, 32]
        x = x[:, 0]  # [N, 32]
        x = self.fc1(x)  # [N, 2]
        return x
