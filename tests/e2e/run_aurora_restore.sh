#!/bin/bash

# Set variables
OPERATION_ID="dev-restore-$(date +%Y-%m-%d)"
TARGET_DATE=$(date +%Y-%m-%d)
LAMBDA_PREFIX="aurora-restore"
ENV="dev"
REGION="us-west-2"

# Function to invoke Lambda and check response
invoke_lambda() {
  local function_name=$1
  local payload=$2
  local expected_next_step=$3
  
  echo "Invoking $function_name..."
  
  aws lambda invoke \
    --function-name "${LAMBDA_PREFIX}-${function_name}-${ENV}" \
    --region $REGION \
    --payload "$payload" \
    response.json
  
  local status=$(jq -r '.status' response.json)
  local next_step=$(jq -r '.next_step' response.json)
  
  echo "Response: $(cat response.json)"
  
  if [ "$status" != "success" ]; then
    echo "Error: Lambda invocation failed"
    exit 1
  fi
  
  if [ "$next_step" != "$expected_next_step" ] && [ "$expected_next_step" != "any" ]; then
    echo "Error: Unexpected next step. Expected $expected_next_step, got $next_step"
    exit 1
  fi
  
  return 0
}

# Step 1: Snapshot Check
invoke_lambda "snapshot-check" "{\"operation_id\": \"$OPERATION_ID\", \"target_date\": \"$TARGET_DATE\"}" "copy_snapshot"

# Step 2: Copy Snapshot
SNAPSHOT_NAME=$(jq -r '.snapshot_name' response.json)
invoke_lambda "copy-snapshot" "{\"operation_id\": \"$OPERATION_ID\", \"snapshot_name\": \"$SNAPSHOT_NAME\"}" "check_copy_status"

# Step 3: Check Copy Status (loop until complete)
TARGET_SNAPSHOT=$(jq -r '.target_snapshot' response.json)
while true; do
  invoke_lambda "check-copy-status" "{\"operation_id\": \"$OPERATION_ID\", \"target_snapshot\": \"$TARGET_SNAPSHOT\"}" "any"
  
  COPY_STATUS=$(jq -r '.copy_status' response.json)
  if [ "$COPY_STATUS" = "available" ]; then
    break
  fi
  
  echo "Snapshot copy in progress, waiting 30 seconds..."
  sleep 30
done

# Step 4: Delete RDS (loop until complete)
while true; do
  invoke_lambda "delete-rds" "{\"operation_id\": \"$OPERATION_ID\"}" "any"
  
  DELETION_STATUS=$(jq -r '.deletion_status' response.json)
  if [ "$DELETION_STATUS" = "completed" ] || [ "$DELETION_STATUS" = "" ]; then
    break
  fi
  
  echo "Cluster deletion in progress, waiting 30 seconds..."
  sleep 30
done

# Step 5: Restore Snapshot
invoke_lambda "restore-snapshot" "{\"operation_id\": \"$OPERATION_ID\", \"target_snapshot\": \"$TARGET_SNAPSHOT\"}" "check_restore_status"

# Step 6: Check Restore Status (loop until complete)
while true; do
  invoke_lambda "check-restore-status" "{\"operation_id\": \"$OPERATION_ID\"}" "any"
  
  CLUSTER_STATUS=$(jq -r '.cluster_status' response.json)
  if [ "$CLUSTER_STATUS" = "available" ]; then
    break
  fi
  
  echo "Cluster restore in progress, waiting 30 seconds..."
  sleep 30
done

# Step 7: Setup DB Users
invoke_lambda "setup-db-users" "{\"operation_id\": \"$OPERATION_ID\"}" "verify_restore"

# Step 8: Verify Restore
invoke_lambda "verify-restore" "{\"operation_id\": \"$OPERATION_ID\"}" "notify_completion"

# Step 9: Notify Completion
invoke_lambda "notify-completion" "{\"operation_id\": \"$OPERATION_ID\"}" "null"

# Step 10: Cleanup
invoke_lambda "cleanup" "{\"operation_id\": \"$OPERATION_ID\"}" "null"

echo "Aurora restore process completed successfully!"
