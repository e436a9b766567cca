"""The teacher's guided DDIM solver of the distillation (training/train_lcm.py GuidedDdimTeacher), the
target "ode" trains towards and tools/lcm_ceiling.py's exact consistency function runs: checked against the
DDIM formulas written out, on a tiny random U-Net."""
from itertools import pairwise

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from training.train_lcm import GuidedDdimTeacher


def tiny_unet(in_channels: int = 4) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=12,
                                norm_num_groups=4, attention_head_dim=4).eval()


def solver(in_channels: int = 4) -> GuidedDdimTeacher:
    ac = DDPMScheduler(beta_schedule="scaled_linear").alphas_cumprod.float()
    torch.manual_seed(1)
    return GuidedDdimTeacher(tiny_unet(in_channels), torch.randn(1, 3, 12), ac, skip=250, device=torch.device("cpu"))


def test_a_step_is_the_guided_ddim_step_written_out():
    s = solver()
    torch.manual_seed(2)
    x, hidden = torch.randn(2, 4, 8, 8), torch.randn(2, 3, 12)
    t_from, t_to, omega = torch.tensor([999, 499]), torch.tensor([749, 249]), torch.tensor([0.0, 6.5])
    got = s.step(x, t_from, t_to, hidden, None, omega)
    with torch.no_grad():
        for i in range(2):
            a, a_to = s.ac[t_from[i]], s.ac[t_to[i]]
            eps_c = s.teacher(x[i:i + 1], t_from[i:i + 1], hidden[i:i + 1]).sample
            eps_u = s.teacher(x[i:i + 1], t_from[i:i + 1], s.uncond).sample
            eps = eps_u + (1 + omega[i]) * (eps_c - eps_u)
            x0 = (x[i:i + 1] - (1 - a).sqrt() * eps) / a.sqrt()
            torch.testing.assert_close(got[i:i + 1], a_to.sqrt() * x0 + (1 - a_to).sqrt() * eps, rtol=1e-4, atol=1e-4)


def test_the_ode_solution_steps_each_sample_down_the_grid_to_zero_and_leaves_t_zero_alone():
    s = solver(in_channels=9)
    torch.manual_seed(3)
    x, hidden, extra = torch.randn(3, 4, 8, 8), torch.randn(3, 3, 12), torch.randn(3, 5, 8, 8)
    t, omega = torch.tensor([999, 249, 0]), torch.tensor([1.0, 2.0, 3.0])
    got = s.ode_solution(x, t, hidden, extra, omega)
    for i, steps in enumerate(([999, 749, 499, 249, 0], [249, 0], [0])):
        cur = x[i:i + 1]
        for t_from, t_to in pairwise(steps):
            cur = s.step(cur, torch.tensor([t_from]), torch.tensor([t_to]), hidden[i:i + 1], extra[i:i + 1], omega[i:i + 1])
        torch.testing.assert_close(got[i:i + 1], cur, rtol=1e-4, atol=1e-4)
    assert torch.equal(got[2], x[2])
