"""Small specs that together use every layer type of the registry, shared by the tests of static
costs (test_compute.py) and of export (test_export.py); a test fails when a type is missing here.

They also use the variants a rule must get right: in-place activations, norms without affine
parameters or running statistics, grouped convolutions, a `mul` gate, a residual, a linear layer
on rows.
"""

EXAMPLES = {
    "sequence": {
        "name": "Seq",
        "input": [4, 32],
        "layers": [
            {
                "conv1d": {
                    "out_channels": 8,
                    "kernel_size": 3,
                    "padding": 1,
                    "bias": False,
                }
            },
            {"batchnorm1d": {"affine": False}},
            {"leakyrelu": {"inplace": True}},
            {"maxpool1d": 2},
            {"avgpool1d": {"kernel_size": 3, "stride": 1, "padding": 1}},
            {"dropout1d": 0.3},
            {"adaptiveavgpool1d": 4},
            "elu",
            "flatten",
            {"linear": 16},
            {"batchnorm1d": {"track_running_stats": False}},
            "gelu",
            {"dropout": 0.1},
            "layernorm",
            "silu",
            {"linear": {"out_features": 8, "bias": False}},
            "tanh",
            {"linear": 4},
            "sigmoid",
            "softmax",
        ],
    },
    "image": {
        "name": "Img",
        "input": [3, 12, 12],
        "layers": [
            {
                "conv2d": {
                    "out_channels": 6,
                    "kernel_size": 3,
                    "groups": 3,
                    "padding": 1,
                }
            },
            {"relu": {"inplace": True}},
            {"avgpool2d": 2},
            {
                "branches": {
                    "merge": "mul",
                    "paths": [
                        [],
                        [
                            {"adaptiveavgpool2d": 1},
                            {"conv2d": {"out_channels": 6, "kernel_size": 1}},
                            "sigmoid",
                        ],
                    ],
                }
            },
            {
                "residual": [
                    {"conv2d": {"out_channels": 6, "kernel_size": 3, "padding": 1}},
                    "batchnorm2d",
                ]
            },
            {"maxpool2d": {"kernel_size": 3, "stride": 2, "ceil_mode": True}},
            {"adaptiveavgpool2d": 2},
            "identity",
            {"dropout2d": 0.2},
            "flatten",
            {"linear": 5},
            "logsoftmax",
        ],
    },
    "rows": {
        "name": "Rows",
        "input": [5, 6],
        "layers": [
            {"linear": 4},
            {"layernorm": {"normalized_shape": [5, 4]}},
            {"dropout": 0.0},
            {"relu": None},
            {"linear": 3},
        ],
    },
}
