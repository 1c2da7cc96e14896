-- ArgoCD health of a DataAudit or AnalyticsJob, from the operator's status (docs/argocd.md has the table).
-- Installed as resource.customizations.health.datamanager.petrosa.io_DataAudit (and _AnalyticsJob).
-- Written for ArgoCD's gopher-lua (Lua 5.1, base and table libraries only); tested in it by tests/unit/argocd.
local hs = {}
local OPT_IN = "datamanager.petrosa.io/argocd-degraded-on-low-score"
-- ArgoCD opens no string library for health scripts: words are spelled out.
local OUTCOME = {Succeeded = "succeeded", Failed = "failed"}

local function condition(kind)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == kind then
        return c
      end
    end
  end
  return nil
end

local function reason_message(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

local generation = obj.metadata.generation
local status = obj.status
local ready = condition("Ready")
if status == nil or status.observedGeneration == nil or ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the resource"
  return hs
end
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. generation
  return hs
end
generation = status.observedGeneration
local suspended = obj.spec ~= nil and obj.spec.suspend == true

-- A spec the operator refused is Degraded at once, whatever ran before.
if ready.status == "False" and ready.reason == "InvalidSpec" then
  hs.status = "Degraded"
  hs.message = reason_message(ready)
  return hs
end

-- Progressing only while the current generation has not finished a run yet (and will run: not suspended).
-- A run ref without its generation counts as current: a resource never stays Progressing for want of it.
local last = status.lastRun
local last_generation = generation
if last ~= nil and last.generation ~= nil then
  last_generation = last.generation
end
if not suspended and (last == nil or last_generation < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the first run of generation " .. generation
  if status.activeRuns ~= nil then
    for _, run in ipairs(status.activeRuns) do
      if run.generation == generation then
        hs.message = "First run of generation " .. generation .. " in progress: " .. run.id .. " (" .. (run.jobName or "") .. ")"
      end
    end
  end
  return hs
end

-- From here on, the last finished run decides: scheduled and manual runs in flight change nothing.
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = reason_message(ready)
  local failures = status.consecutiveFailures
  if failures ~= nil and failures > 1 then
    hs.message = hs.message .. " (" .. failures .. " consecutive failed runs)"
  end
  if suspended then
    hs.message = hs.message .. "; suspended: no new runs start"
  end
  return hs
end

local healthy = condition("Healthy")
local low_score = healthy ~= nil and healthy.status == "False"
local annotations = obj.metadata.annotations
if low_score and annotations ~= nil and annotations[OPT_IN] == "true" then
  hs.status = "Degraded"
  hs.message = reason_message(healthy)
  return hs
end

hs.status = "Healthy"
if suspended then
  hs.message = "Suspended: no new runs start"
  if last ~= nil then
    hs.message = hs.message .. "; last run " .. last.id .. " " .. (OUTCOME[last.outcome] or "finished")
  end
else
  hs.message = ready.message
end
-- A low score (not opted in) or a success without a readable summary is said, not hidden.
if healthy ~= nil and healthy.status ~= "True" and healthy.reason ~= "NoScoreYet" then
  hs.message = hs.message .. "; " .. reason_message(healthy)
end
return hs
