"""The task families bundled with metarl.

Each module holds one group of families (their envs and :class:`metarl.TaskFamily`
subclasses) and documents each family's distribution, horizon, reward and source.
``import metarl`` registers every id below lazily: a module is imported only when its family
is first made, so importing metarl stays cheap.

This package is ``metarl_envs`` (not ``envs``) so it cannot clobber the unrelated ``envs``
package on PyPI.
"""

#: Family id -> "module:Class" for every bundled family.
BUNDLED_FAMILIES: dict[str, str] = {
    "Navigation2D-v0": "metarl_envs.navigation:Navigation2DFamily",
    "Navigation2D-v1": "metarl_envs.navigation:Navigation2DV1Family",
    "HalfCheetahVel-v0": "metarl_envs.half_cheetah:HalfCheetahVelFamily",
    "HalfCheetahDir-v0": "metarl_envs.half_cheetah:HalfCheetahDirFamily",
    "HalfCheetahVel-v1": "metarl_envs.half_cheetah:HalfCheetahVelV1Family",
    "HalfCheetahDir-v1": "metarl_envs.half_cheetah:HalfCheetahDirV1Family",
    "AntVel-v0": "metarl_envs.ant:AntVelFamily",
    "AntDir-v0": "metarl_envs.ant:AntDirFamily",
    "AntVel-v1": "metarl_envs.ant:AntVelV1Family",
    "AntDir-v1": "metarl_envs.ant:AntDirV1Family",
    "AntGoal-v0": "metarl_envs.ant:AntGoalFamily",
    "AntCrippledLeg-v0": "metarl_envs.ant:AntCrippledLegFamily",
    "HalfCheetahCrippledJoint-v0": "metarl_envs.actuators:HalfCheetahCrippledJointFamily",
    "HalfCheetahReversedJoints-v0": "metarl_envs.actuators:HalfCheetahReversedJointsFamily",
    "HalfCheetahRandParams-v0": "metarl_envs.rand_params:HalfCheetahRandParamsFamily",
    "HopperRandParams-v0": "metarl_envs.rand_params:HopperRandParamsFamily",
    "Walker2dRandParams-v0": "metarl_envs.rand_params:Walker2dRandParamsFamily",
}
