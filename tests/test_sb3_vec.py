"""SB3 on batched Gymnasium vector envs: vim_world.sb3.as_sb3_vec_env."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import vim_world  # noqa: F401  (registers the ids)
from vim_world.imagination import Imagination
from vim_world.imagined_env import ImaginedVectorEnv
from vim_world.model import VIM, preset
from vim_world.sb3 import as_sb3_vec_env


def _compare(a, b, what):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), what
        for k in a:
            _compare(a[k], b[k], f"{what}[{k!r}]")
    else:
        np.testing.assert_array_equal(a, b, err_msg=what)


def _vector_env(kind: str, env_id: str, n: int, kwargs: dict) -> gym.vector.VectorEnv:
    """The native vector env, or Gymnasium's SyncVectorEnv in one of its three autoreset modes."""
    if kind == "native":
        return gym.make_vec(env_id, num_envs=n, **kwargs)
    mode = gym.vector.AutoresetMode[kind]
    return gym.vector.SyncVectorEnv([lambda: gym.make(env_id, **kwargs) for _ in range(n)], autoreset_mode=mode)


@pytest.mark.parametrize("kind", ["native", "NEXT_STEP", "SAME_STEP", "DISABLED"])
@pytest.mark.parametrize("env_id, obs_mode", [("VimWorld/Steer-v0", "state"), ("VimWorld/Passive-v0", "both")])
def test_matches_dummy_vec_env_step_for_step(kind, env_id, obs_mode):
    """Same seeds and actions: the wrapped vector env returns what DummyVecEnv of N single envs
    returns, through episode ends (terminal_observation, TimeLimit.truncated, reset in place),
    whatever the vector env's autoreset mode."""
    n = 4
    kwargs = {"obs_mode": obs_mode, "obs_size": 32}
    venv = as_sb3_vec_env(_vector_env(kind, env_id, n, kwargs))
    dummy = DummyVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(n)])
    venv.seed(3)
    dummy.seed(3)
    _compare(venv.reset(), dummy.reset(), "reset obs")
    venv.action_space.seed(0)
    ends = 0
    for t in range(130):  # Steer and Passive episodes are truncated at 60 or earlier
        actions = np.stack([venv.action_space.sample() for _ in range(n)])
        o1, r1, d1, i1 = venv.step(actions)
        o2, r2, d2, i2 = dummy.step(actions)
        _compare(o1, o2, f"obs at step {t}")
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        for x, y in zip(i1, i2):
            assert ("terminal_observation" in x) == ("terminal_observation" in y)
            if "terminal_observation" in y:
                ends += 1
                _compare(x["terminal_observation"], y["terminal_observation"], f"terminal obs at {t}")
                assert x["TimeLimit.truncated"] == y["TimeLimit.truncated"]
    assert ends >= n  # every env finished at least one episode
    venv.close()


def test_rejects_non_vector_env():
    with pytest.raises(TypeError, match="gymnasium.vector.VectorEnv"):
        as_sb3_vec_env(gym.make("VimWorld/Steer-v0"))


def test_ppo_trains_on_native_vector_env():
    venv = as_sb3_vec_env(gym.make_vec("VimWorld/Steer-v0", num_envs=8, obs_mode="state"))
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))


def test_ppo_trains_on_imagined_vector_env():
    torch.manual_seed(0)
    im = Imagination(VIM(preset("tiny-state", num_slots=4, state_dim=13, action_dim=5, reward_head=True)).eval())
    imagined = ImaginedVectorEnv(
        im,
        "VimWorld/Steer-v0",
        num_envs=8,
        start_states=16,
        max_episode_steps=10,
        success=lambda o: np.zeros(len(o), bool),
    )
    venv = as_sb3_vec_env(imagined)
    obs = venv.reset()
    assert obs.shape == (8, *imagined.single_observation_space.shape)
    for _ in range(10):  # truncation after 10 steps: finished envs restart from the start pool in place
        obs, _, dones, infos = venv.step(np.zeros(8, np.int64))
    assert dones.all() and all(i["TimeLimit.truncated"] for i in infos)
    starts = imagined._start_obs.reshape(16, -1)
    assert all((starts == o.reshape(1, -1)).all(1).any() for o in obs)
    assert not any((starts == i["terminal_observation"].reshape(1, -1)).all(1).any() for i in infos)
    model = PPO("MlpPolicy", VecMonitor(venv), n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert [e["l"] for e in model.ep_info_buffer] == [10] * len(model.ep_info_buffer) != []
