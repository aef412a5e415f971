# A Clara Deploy workflow written the way NVIDIA's Python client documentation writes one:
# create a pipeline from its definition file, create a job (with a new payload), upload the DICOM
# input into the job's payload, start the job with variables, poll its status until it stops,
# download the operators' results and read each operator's logs.
#
# claractl's tests run this file unchanged apart from the two address lines below
# (tests/clara_api/test_documented_workflow.py).

from nvidia_clara.jobs_client import JobsClient
from nvidia_clara.pipelines_client import PipelinesClient
from nvidia_clara.payloads_client import PayloadsClient
import nvidia_clara.pipeline_types as pipeline_types
import os
from pathlib import Path

# Clients creation
clara_ip_address = "10.0.0.1"
clara_port = "31851"

jobs_client = JobsClient(target=clara_ip_address, port=clara_port)
payloads_client = PayloadsClient(target=clara_ip_address, port=clara_port)
pipeline_client = PipelinesClient(target=clara_ip_address, port=clara_port)

# The pipeline definition file, as a list of pipeline_types.PipelineDefinition
file_path = "../ct_volume_pipeline.yaml"
definitions = [pipeline_types.PipelineDefinition(name=file_path, content=Path(file_path).read_text())]

# Create the pipeline
pipeline_id = pipeline_client.create_pipeline(definition=definitions)

# Create a job of that pipeline: Clara creates the job's payload with it
job_info = jobs_client.create_job(job_name="ctvolumejob", pipeline_id=pipeline_types.PipelineId(pipeline_id.value))
job_id = job_info.job_id
payload_id = job_info.payload_id

# Upload every file of the input folder into the job's payload
input_path = "../ct-input/dcm"
for file in os.listdir(input_path):
    file_path = input_path + "/" + str(file)
    with open(file_path, 'rb') as fp:
        payloads_client.upload(payload_id=payload_id, blob_name=file, file_object=fp)

# List the jobs
job_list = jobs_client.list_jobs()

# Start the job, giving a value to the pipeline's LABEL variable
job_token = jobs_client.start_job(job_id=job_id, named_values={"LABEL": "from-start-job"})

# Loop until the job stops (JobState 3)
job_status = jobs_client.get_status(job_id=job_id)
while job_status.job_state != 3:
    job_status = jobs_client.get_status(job_id=job_id)

# The payload's files; download those the operators wrote ("/operators/...")
payload_details = payloads_client.get_details(payload_id=payload_id)
for file in payload_details.file_details:
    file_name = file.name
    name = file_name.split('/')
    if name[1] == 'operators':
        with open("./results/" + name[-1], 'wb+') as wb:
            payloads_client.download_from(payload_id=payload_id, blob_name="." + file_name, dest_obj=wb)

# Each operator's logs
for operator_name in ["dicom-reader", "summary"]:
    jobs_logs = jobs_client.job_logs(job_id=job_id, operator_name=operator_name)
    with open("./results/" + operator_name + ".log", 'w') as log_file:
        log_file.write("\n".join(jobs_logs))

print(job_id.value, payload_id.value, pipeline_id.value, job_status.job_status)
