-- Argo CD health check for aks.gitops.dev/RunCommand, RunCommandSet and RunCommandSchedule
-- (aks-runcommand-operator). Install it as resource.customizations.health.aks.gitops.dev_<Kind>
-- for each of the three kinds in argocd-cm (see argocd-cm.yaml beside this file). Tested by
-- tests/test_gitops_health.py, tests/test_gitops_health_sets.py and
-- tests/test_gitops_health_schedules.py.
--
--   Progressing  no status yet, status.observedGeneration ~= metadata.generation,
--                or state Pending/Submitting/Running (retries included); a set's round
--                rolling out (Progressing)
--   Suspended    spec.suspend is true and nothing was submitted (state Pending), or a
--                suspended set or schedule (state Suspended), or a staged set whose next
--                stage waits for an approval (state WaitingForApproval)
--   Degraded     Stalled=True: the command failed (non-zero exit, ARM error,
--                DeadlineExceeded) or its outcome is Unknown; a schedule whose last run
--                failed; message "reason: message"
--   Healthy      Ready=True: the command exited 0 (on every cluster of a set's round); a
--                schedule whose last run succeeded, or that has not run yet
hs = {}

local function condition(status, type_)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function message(status, c, fallback)
  if status.message ~= nil and status.message ~= "" then
    return status.message
  end
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.state == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up this RunCommand"
  return hs
end

local generation = obj.metadata.generation
if status.observedGeneration == nil or status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local waiting = status.state == "Pending" or status.state == "Suspended"
if obj.spec ~= nil and obj.spec.suspend == true and waiting then
  hs.status = "Suspended"
  hs.message = message(status, nil, "spec.suspend is true: nothing is submitted")
  return hs
end

if status.state == "WaitingForApproval" then
  hs.status = "Suspended"
  hs.message = message(status, nil, "A stage waits for approval")
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = message(status, stalled, "RunCommand " .. tostring(status.state))
  if status.reason ~= nil and status.reason ~= "" then
    -- The reason carries the ARM error code (ResourceNotFound, DeadlineExceeded, ...).
    hs.message = status.reason .. ": " .. hs.message
  end
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message(status, ready, "Succeeded")
  return hs
end

-- Pending, Submitting, Running, a retry waiting for its time, or anything not yet final.
hs.status = "Progressing"
hs.message = message(status, ready, "RunCommand is " .. tostring(status.state))
return hs
